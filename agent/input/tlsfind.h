/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Finding what --tls probes, from /proc (a root given as an argument, so unit
 * tests build a fake one): the processes of the target (a cgroup's, or the owners
 * of the listening sockets of the service's ports), the libssl each has mapped,
 * and, for a process without one, why its TLS cannot be seen.
 */
#ifndef ST_TLSFIND_H
#define ST_TLSFIND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ST_TLS_PATH_MAX 4096

/* A library file one process has mapped. */
struct st_tls_libref {
	char path[ST_TLS_PATH_MAX]; /* as the process sees it (its mount namespace) */
	uint64_t ino;
	unsigned dev_major, dev_minor;
};

/* True for an OpenSSL-style libssl ("libssl.so", "libssl.so.3", "libssl.so.1.1"):
 * not NSS's "libssl3.so", whose API is another. */
bool st_tls_is_libssl(const char *path);

/* True for OpenSSL's libcrypto ("libcrypto.so.3", "libcrypto.so.1.1"). */
bool st_tls_is_libcrypto(const char *path);

/*
 * One /proc/PID/maps line: its pathname, inode and device. Returns 1 for a mapping
 * of a file, 0 for anything else (anonymous, [heap], a deleted file), -1 when the
 * line is malformed.
 */
int st_tls_parse_maps_line(const char *line, char *path, size_t pathlen, uint64_t *ino,
			   unsigned *dev_major, unsigned *dev_minor);

/*
 * The libssl files PID maps (each once), at most max; returns how many, or -errno
 * (the process is gone: -ENOENT). *has_jvm / *other_tls (may be NULL) say whether
 * libjvm.so, or another TLS library (GnuTLS, NSS, wolfSSL, mbedTLS) is mapped.
 */
int st_tls_find_libssl(const char *proc_root, pid_t pid, struct st_tls_libref *out, size_t max,
		       bool *has_jvm, const char **other_tls);

/* The libcrypto PID maps (the first one) into *out: 1, 0 when none, or -errno. */
int st_tls_find_libcrypto(const char *proc_root, pid_t pid, struct st_tls_libref *out);

/* Why PID's TLS cannot be seen, when it maps no libssl: one phrase in buf ("Go's
 * crypto/tls", "Java (JSSE)", "TLS linked into the binary ... --libssl ...", "no TLS
 * library mapped"). */
void st_tls_explain(const char *proc_root, pid_t pid, char *buf, size_t len);

/* ELF checks (libelf): a symbol in .symtab or .dynsym, a section by name. false when
 * the file cannot be read as ELF. */
bool st_tls_elf_has_symbol(const char *path, const char *name);
bool st_tls_elf_has_section(const char *path, const char *name);
/* The file offsets of functions names[0, n) defined in path (what a uprobe is attached at):
 * offs[i] = 0 for one it lacks. Returns how many were found, or -ENOEXEC (not ELF). */
int st_tls_elf_func_offsets(const char *path, const char *const *names, size_t n, uint64_t *offs);
/* A function path calls through the PLT (an undefined symbol of .dynsym). */
bool st_tls_elf_imports(const char *path, const char *name);

/*
 * Whether keys mode can read this libssl's secrets (docs/TLS.md, "Keys mode"): its libcrypto
 * exports EVP_KDF_derive and the libssl calls it there (OpenSSL 3: every TLS 1.3 secret and
 * TLS 1.2's key block go through it). false with the reason in why otherwise (OpenSSL 1.1,
 * LibreSSL, BoringSSL, a libcrypto linked in; libcrypto NULL: none found).
 */
bool st_tls_keys_capable(const char *libssl, const char *libcrypto, char *why, size_t len);

/*
 * PID's established TCP connections whose local port is one of ports (its network
 * namespace's /proc/PID/net/tcp{,6}, its own fds): sessions a probe attached now joins in
 * the middle. Their socket inodes into out (at most max); how many (0 when none or
 * unreadable), or -errno.
 */
int st_tls_established(const char *proc_root, pid_t pid, const uint16_t *ports, size_t n_ports,
		       uint64_t *out, size_t max);

/*
 * Inodes of the TCP sockets listening on one of ports, from PROC/net/tcp and tcp6
 * (the network namespace of the reader). Returns how many (at most max) or -errno.
 */
int st_tls_listen_inodes(const char *proc_root, const uint16_t *ports, size_t n_ports,
			 uint64_t *out, size_t max);

/* Processes holding one of the socket inodes open (PROC/PID/fd), sorted, each once;
 * returns how many (at most max). */
int st_tls_socket_owners(const char *proc_root, const uint64_t *inodes, size_t n, pid_t *out,
			 size_t max);

/* Processes of a cgroup v2 directory and its descendants (cgroup.procs), at most max;
 * returns how many or -errno. */
int st_tls_cgroup_pids(const char *cgroup, pid_t *out, size_t max);

/* "socket:[12345]" -> 12345; 0 when the link is not a socket. */
uint64_t st_tls_socket_inode(const char *link);

#endif /* ST_TLSFIND_H */
