/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The TLS decryptor (--tls keys mode, docs/TLS.md): the ciphertext segments the packet
 * programs capture, and the secrets the EVP_KDF_derive probe reports once per handshake
 * (ST_REC_KDF, agent/tlsdec/tlskeys.h), in; the connections' plaintext out, as segments on the
 * connection's real 4-tuple that every consumer takes as it takes the per-call probes' ones.
 *
 * Per connection:
 *  - the ciphertext is reassembled (agent/reasm/reasm.c, the engine's own instance) and cut
 *    into records; ClientHello and ServerHello are read in the clear (client random, version,
 *    cipher suite, HelloRetryRequest);
 *  - secrets are tied to it by what they are derived from, never by timing: a TLS 1.3 secret
 *    by its transcript hash (ClientHello..ServerHello for the handshake secrets; ..server
 *    Finished, read from the server's decrypted flight, for the application ones); TLS 1.2's
 *    key block by the client random its "key expansion" carries (checked against the server
 *    random too). Secrets that come before their connection wait (secret_ttl_ns), and records
 *    that come before their keys wait too (bounded);
 *  - records are opened per direction with sequence numbers counted from the stream
 *    (agent/tlsdec/tlsrec.h); TLS 1.3 KeyUpdates are followed (the next generation is derived
 *    here); alerts, handshake and ChangeCipherSpec records are consumed, application data goes
 *    out;
 *  - a capture gap (the reassembly's, exact), or a record that does not open, is a loss of
 *    exactly the plaintext it held (its length less the suite's overhead), and decryption goes
 *    on at the next record that authenticates under the next sequence numbers tried: a record
 *    is only ever delivered when its tag verifies, no plaintext is guessed. A direction that
 *    cannot be resynchronised within ST_TLSDEC_SCAN_MAX bytes gives the rest as one gap;
 *  - the plaintext's sequence numbers are the engine's own (a random ISN per direction, the
 *    SYN pair when the connection's start was seen, one segment per record, FIN/RST as the
 *    ciphertext's), so a loss is an exact hole for every consumer;
 *  - a connection whose plaintext the per-call probes deliver (st_tlsdec__called) is left
 *    alone, and one this engine decrypts is "keyed" (st_tlsdec__keyed): the same connection
 *    never reaches a consumer twice.
 * Secrets live in this engine's memory only (and in what ops->keylog writes, --keylog) and are
 * wiped (OPENSSL_cleanse) when their connection ends or when they expire unused.
 *
 * Callbacks run from st_tlsdec__cipher(), __kdf(), __tick() and __flush(), never re-entered.
 * Memory: the reassembly's max_mem, plus records waiting for their keys and partial records
 * (at most hold_max in all, ST_TLSDEC_HOLD_CONN per connection direction: beyond, the
 * connection is given up, counted), plus the secrets waiting (at most ST_TLSDEC_SECRETS_MAX).
 */
#ifndef ST_TLSDEC_H
#define ST_TLSDEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "segment.h"

#define ST_TLSDEC_SECRET_TTL_NS (10ull * 1000000000ull)
#define ST_TLSDEC_SECRETS_MAX 16384u
#define ST_TLSDEC_HOLD_CONN (1u << 20)
#define ST_TLSDEC_HOLD_MAX_DEFAULT (64ull << 20)
/* Sequence numbers tried on each side of a resynchronisation's estimate, and the ciphertext
 * scanned for a record that authenticates before a direction is given up. */
#define ST_TLSDEC_SEQ_TRY 64u
#define ST_TLSDEC_SCAN_MAX (1u << 20)

struct st_tlsdec_config {
	uint64_t max_mem;      /* the ciphertext reassembly's cap; 0 = 64 MiB */
	uint64_t hold_max;     /* records and partial records held; 0 = ST_TLSDEC_HOLD_MAX_DEFAULT */
	uint64_t secret_ttl_ns; /* 0 = ST_TLSDEC_SECRET_TTL_NS */
	const uint16_t *ports; /* the service's ports (a connection joined midway is oriented) */
	size_t n_ports;
	bool keylog_only;      /* --keylog without --tls: tie and report secrets, deliver nothing */
	uint64_t hash_seed;    /* the reassembly's; 0 = fixed */
};

struct st_tlsdec_ops {
	/* A plaintext segment (SYN, data, loss, FIN, RST) of a decrypted connection. < 0 is kept
	 * and returned by the call that caused it. */
	int (*segment)(void *ctx, const struct st_segment *seg);
	/* A secret tied to a connection (name: SSLKEYLOGFILE's label, CLIENT_RANDOM for 1.2). */
	void (*keylog)(void *ctx, const char *name, const uint8_t client_random[32],
		       const uint8_t *secret, size_t len);
};

struct st_tlsdec_stats {
	uint64_t conns;           /* ciphertext connections seen */
	uint64_t keyed;           /* ... decrypted (their secrets found) */
	uint64_t called;          /* ... left to the per-call probes */
	uint64_t nokeys;          /* ... that ended without secrets (not delivered) */
	uint64_t not_tls;         /* ... whose bytes were not TLS (or a version/suite not handled) */
	uint64_t joined;          /* ... first seen in the middle, no handshake: not decrypted */
	uint64_t given_up;        /* ... given up after a gap in their handshake, or a hold cap */
	uint64_t records;         /* records opened */
	uint64_t plain_bytes;     /* plaintext delivered */
	uint64_t cipher_bytes;    /* ciphertext of keyed connections */
	uint64_t failed;          /* records that did not authenticate (counted in loss) */
	uint64_t loss_records;    /* records lost (capture gaps, failures) */
	uint64_t loss_bytes;      /* plaintext bytes reported as lost */
	uint64_t resyncs;         /* directions found again after a gap */
	uint64_t resync_failed;   /* directions given up (their rest is one gap) */
	uint64_t key_updates;     /* TLS 1.3 KeyUpdates followed */
	uint64_t early_skipped;   /* 0-RTT records the server refused (it skips them too) */
	uint64_t secrets;         /* KDF records taken */
	uint64_t secrets_matched; /* ... tied to a connection */
	uint64_t secrets_expired; /* ... dropped unused after secret_ttl_ns (or the table's cap) */
	uint64_t held_bytes;      /* bytes held now (records waiting, partial records) */
	uint64_t held_peak;
};

/* Per process (tgid of the secrets): what its keyed connections did, for the choice of mode. */
struct st_tlsdec_proc {
	uint64_t handshakes;    /* connections keyed */
	uint64_t flights;       /* client flights (requests) of those, so far */
	uint64_t ended;         /* ... of them closed */
	uint64_t ended_flights; /* ... their flights: requests per connection */
};

struct st_tlsdec;

/* NULL with errno. cfg may be NULL (defaults). */
struct st_tlsdec *st_tlsdec__new(const struct st_tlsdec_config *cfg,
				 const struct st_tlsdec_ops *ops, void *ctx);
/* A ciphertext segment (live records or pcap packets: dir known or -1). 0 or a callback's < 0. */
int st_tlsdec__cipher(struct st_tlsdec *d, const struct st_segment *seg);
/* An ST_REC_KDF record (size bytes); now_ns in the segments' clock. 0, or a callback's < 0. */
int st_tlsdec__kdf(struct st_tlsdec *d, const void *rec, size_t size, uint64_t now_ns);
/* The per-call probes deliver this connection's plaintext: its ciphertext is not decrypted
 * (key: as on the wire, either direction). */
void st_tlsdec__called(struct st_tlsdec *d, const struct st_flow_key *key, uint64_t now_ns);
/* This engine decrypts the connection (either direction's key): per-call plaintext of it is
 * a second copy. */
bool st_tlsdec__keyed(struct st_tlsdec *d, const struct st_flow_key *key);
/* Timers: reassembly waits, secrets expiring. */
int st_tlsdec__tick(struct st_tlsdec *d, uint64_t now_ns);
/* End of input: what can be delivered is, every connection closes. */
int st_tlsdec__flush(struct st_tlsdec *d);
void st_tlsdec__stats(const struct st_tlsdec *d, struct st_tlsdec_stats *out);
/* What tgid's keyed connections did so far (zeros if none). */
void st_tlsdec__proc(const struct st_tlsdec *d, uint32_t tgid, struct st_tlsdec_proc *out);
/* Keyed connections still open. */
uint64_t st_tlsdec__open_keyed(const struct st_tlsdec *d);
/* Wipes every secret and frees; safe on NULL. */
void st_tlsdec__free(struct st_tlsdec *d);

#endif /* ST_TLSDEC_H */
