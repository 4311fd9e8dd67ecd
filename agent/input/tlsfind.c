/* SPDX-License-Identifier: GPL-2.0-only */
#include "tlsfind.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "opts.h"

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

bool st_tls_is_libssl(const char *path)
{
	const char *b = base_name(path);

	return !strncmp(b, "libssl.so", 9) && (b[9] == '\0' || b[9] == '.');
}

int st_tls_parse_maps_line(const char *line, char *path, size_t pathlen, uint64_t *ino,
			   unsigned *dev_major, unsigned *dev_minor)
{
	unsigned long long start, end, off, inode;
	unsigned maj, min;
	char perms[8];
	int n = 0;
	const char *p;
	size_t l;

	if (sscanf(line, "%llx-%llx %7s %llx %x:%x %llu %n", &start, &end, perms, &off, &maj,
		   &min, &inode, &n) < 7 || !n)
		return -1;
	p = line + n;
	while (*p == ' ')
		p++;
	l = strcspn(p, "\n");
	if (!inode || *p != '/' || !l)
		return 0;
	/* a file replaced since it was mapped (a library upgrade): its path names another */
	if (l > 10 && !strncmp(p + l - 10, " (deleted)", 10))
		return 0;
	if (l >= pathlen)
		return -1;
	memcpy(path, p, l);
	path[l] = '\0';
	*ino = inode;
	*dev_major = maj;
	*dev_minor = min;
	return 1;
}

static const char *other_tls_lib(const char *path)
{
	static const struct {
		const char *prefix;
		const char *name;
	} libs[] = {
		{ "libgnutls.so", "GnuTLS" },   { "libssl3.so", "NSS" },
		{ "libnss3.so", "NSS" },        { "libwolfssl.so", "wolfSSL" },
		{ "libmbedtls.so", "mbedTLS" }, { "libboringssl", "BoringSSL" },
	};
	const char *b = base_name(path);

	for (size_t i = 0; i < sizeof(libs) / sizeof(libs[0]); i++)
		if (!strncmp(b, libs[i].prefix, strlen(libs[i].prefix)))
			return libs[i].name;
	return NULL;
}

bool st_tls_is_libcrypto(const char *path)
{
	const char *b = base_name(path);

	return !strncmp(b, "libcrypto.so", 12) && (b[12] == '\0' || b[12] == '.');
}

/* The files PID maps that is_lib() takes, each once, at most max (see st_tls_find_libssl). */
static int find_libs(const char *proc_root, pid_t pid, bool (*is_lib)(const char *),
		     struct st_tls_libref *out, size_t max, bool *has_jvm, const char **other_tls)
{
	char fn[PATH_MAX], line[ST_TLS_PATH_MAX + 256];
	struct st_tls_libref r;
	size_t n = 0;
	FILE *f;

	if (has_jvm)
		*has_jvm = false;
	if (other_tls)
		*other_tls = NULL;
	snprintf(fn, sizeof(fn), "%s/%d/maps", proc_root, (int)pid);
	f = fopen(fn, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		bool dup = false;

		if (st_tls_parse_maps_line(line, r.path, sizeof(r.path), &r.ino, &r.dev_major,
					   &r.dev_minor) != 1)
			continue;
		if (has_jvm && !strncmp(base_name(r.path), "libjvm.so", 9))
			*has_jvm = true;
		if (other_tls && !*other_tls)
			*other_tls = other_tls_lib(r.path);
		if (!is_lib(r.path))
			continue;
		for (size_t i = 0; i < n; i++)
			if (out[i].ino == r.ino && out[i].dev_major == r.dev_major &&
			    out[i].dev_minor == r.dev_minor)
				dup = true;
		if (dup || n >= max)
			continue;
		out[n++] = r;
	}
	fclose(f);
	return (int)n;
}

int st_tls_find_libssl(const char *proc_root, pid_t pid, struct st_tls_libref *out, size_t max,
		       bool *has_jvm, const char **other_tls)
{
	return find_libs(proc_root, pid, st_tls_is_libssl, out, max, has_jvm, other_tls);
}

int st_tls_find_libcrypto(const char *proc_root, pid_t pid, struct st_tls_libref *out)
{
	return find_libs(proc_root, pid, st_tls_is_libcrypto, out, 1, NULL, NULL);
}

static int elf_open(const char *path, Elf **e)
{
	int fd;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	*e = elf_begin(fd, ELF_C_READ, NULL);
	if (!*e || elf_kind(*e) != ELF_K_ELF) {
		if (*e)
			elf_end(*e);
		close(fd);
		return -1;
	}
	return fd;
}

/* A function symbol name in path's .symtab or .dynsym: defined (imported false) or undefined
 * in .dynsym (imported true: called through the PLT). */
static bool elf_symbol(const char *path, const char *name, bool imported)
{
	Elf_Scn *scn = NULL;
	bool found = false;
	Elf *e = NULL;
	int fd = elf_open(path, &e);

	if (fd < 0)
		return false;
	while (!found && (scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) ||
		    (imported && sh.sh_type != SHT_DYNSYM))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !sh.sh_entsize)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *s;

			if (!gelf_getsym(d, (int)i, &sym) || (sym.st_shndx == SHN_UNDEF) != imported ||
			    (!imported && GELF_ST_TYPE(sym.st_info) != STT_FUNC))
				continue;
			s = elf_strptr(e, sh.sh_link, sym.st_name);
			if (s && !strcmp(s, name)) {
				found = true;
				break;
			}
		}
	}
	elf_end(e);
	close(fd);
	return found;
}

bool st_tls_elf_has_symbol(const char *path, const char *name)
{
	return elf_symbol(path, name, false);
}

bool st_tls_elf_imports(const char *path, const char *name)
{
	return elf_symbol(path, name, true);
}

int st_tls_elf_func_offsets(const char *path, const char *const *names, size_t n, uint64_t *offs)
{
	Elf_Scn *scn = NULL;
	Elf *e = NULL;
	size_t nph, found = 0;
	int fd = elf_open(path, &e);

	for (size_t i = 0; i < n; i++)
		offs[i] = 0;
	if (fd < 0)
		return -ENOEXEC;
	if (elf_getphdrnum(e, &nph)) {
		elf_end(e);
		close(fd);
		return -ENOEXEC;
	}
	while ((scn = elf_nextscn(e, scn)) && found < n) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		d = elf_getdata(scn, NULL);
		if (!d || !sh.sh_entsize)
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize && found < n; i++) {
			GElf_Sym sym;
			const char *s;

			if (!gelf_getsym(d, (int)i, &sym) || sym.st_shndx == SHN_UNDEF || !sym.st_value ||
			    GELF_ST_TYPE(sym.st_info) != STT_FUNC)
				continue;
			s = elf_strptr(e, sh.sh_link, sym.st_name);
			if (!s)
				continue;
			for (size_t k = 0; k < n; k++) {
				if (offs[k] || strcmp(s, names[k]))
					continue;
				/* the file offset of the address: its loadable segment's */
				for (size_t j = 0; j < nph; j++) {
					GElf_Phdr ph;

					if (!gelf_getphdr(e, (int)j, &ph) || ph.p_type != PT_LOAD ||
					    sym.st_value < ph.p_vaddr ||
					    sym.st_value >= ph.p_vaddr + ph.p_filesz)
						continue;
					offs[k] = sym.st_value - ph.p_vaddr + ph.p_offset;
					found++;
					break;
				}
			}
		}
	}
	elf_end(e);
	close(fd);
	return (int)found;
}

bool st_tls_keys_capable(const char *libssl, const char *libcrypto, char *why, size_t len)
{
	if (!libcrypto) {
		snprintf(why, len, "no libcrypto mapped next to its libssl");
		return false;
	}
	if (!st_tls_elf_has_symbol(libcrypto, "EVP_KDF_derive")) {
		snprintf(why, len, "its libcrypto has no EVP_KDF_derive (OpenSSL before 3.0, "
			 "LibreSSL or BoringSSL: their TLS key schedules are internal)");
		return false;
	}
	if (!st_tls_elf_imports(libssl, "EVP_KDF_derive")) {
		snprintf(why, len, "its libssl does not call EVP_KDF_derive through libcrypto's "
			 "export (not OpenSSL 3's libssl, or linked with libcrypto statically)");
		return false;
	}
	return true;
}

bool st_tls_elf_has_section(const char *path, const char *name)
{
	Elf_Scn *scn = NULL;
	bool found = false;
	size_t shstrndx;
	Elf *e = NULL;
	int fd = elf_open(path, &e);

	if (fd < 0)
		return false;
	if (!elf_getshdrstrndx(e, &shstrndx)) {
		while (!found && (scn = elf_nextscn(e, scn))) {
			GElf_Shdr sh;
			const char *s;

			if (!gelf_getshdr(scn, &sh))
				continue;
			s = elf_strptr(e, shstrndx, sh.sh_name);
			found = s && !strcmp(s, name);
		}
	}
	elf_end(e);
	close(fd);
	return found;
}

void st_tls_explain(const char *proc_root, pid_t pid, char *buf, size_t len)
{
	struct st_tls_libref libs[1];
	const char *other = NULL;
	char exe[PATH_MAX];
	bool jvm = false;

	snprintf(exe, sizeof(exe), "%s/%d/exe", proc_root, (int)pid);
	if (st_tls_find_libssl(proc_root, pid, libs, 1, &jvm, &other) < 0) {
		snprintf(buf, len, "gone, or its memory map is unreadable");
	} else if (jvm) {
		snprintf(buf, len, "Java (JSSE does TLS in Java code, not in a libssl)");
	} else if (st_tls_elf_has_section(exe, ".go.buildinfo")) {
		snprintf(buf, len, "a Go program (Go's crypto/tls is Go code, not a libssl)");
	} else if (st_tls_elf_has_symbol(exe, "SSL_read")) {
		snprintf(buf, len, "TLS linked into the binary (OpenSSL, or BoringSSL): give "
			 "--libssl %s/%d/exe", proc_root, (int)pid);
	} else if (other) {
		snprintf(buf, len, "uses %s, which --tls does not probe", other);
	} else {
		snprintf(buf, len, "no TLS library mapped (no TLS yet, or a library --tls does "
			 "not probe: rustls, BoringSSL linked into a dependency)");
	}
}

/* The inodes of the TCP sockets of one /proc net file (tcp, tcp6) in state st (0A: listening,
 * 01: established) whose local port is one of ports. */
static int tcp_file(const char *fn, const uint16_t *ports, size_t n_ports, unsigned want,
		    uint64_t *out, size_t max, size_t *n)
{
	char line[512];
	FILE *f = fopen(fn, "re");

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned lport, st;
		unsigned long long inode;
		char local[64], rem[64];

		/* sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid
		 * timeout inode */
		if (sscanf(line, " %*u: %63[0-9A-Fa-f]:%x %63s %x %*s %*s %*s %*u %*u %llu", local,
			   &lport, rem, &st, &inode) != 5)
			continue;
		if (st != want || !inode || !st_opts_port_listed(ports, n_ports, (uint16_t)lport))
			continue;
		if (*n < max)
			out[(*n)++] = inode;
	}
	fclose(f);
	return 0;
}

int st_tls_listen_inodes(const char *proc_root, const uint16_t *ports, size_t n_ports,
			 uint64_t *out, size_t max)
{
	char fn[PATH_MAX];
	size_t n = 0;
	int e4, e6;

	snprintf(fn, sizeof(fn), "%s/net/tcp", proc_root);
	e4 = tcp_file(fn, ports, n_ports, 0x0A, out, max, &n);
	snprintf(fn, sizeof(fn), "%s/net/tcp6", proc_root);
	e6 = tcp_file(fn, ports, n_ports, 0x0A, out, max, &n);
	if (e4 && e6)
		return e4;
	return (int)n;
}

uint64_t st_tls_socket_inode(const char *link)
{
	unsigned long long ino;
	int n = 0;

	if (sscanf(link, "socket:[%llu]%n", &ino, &n) != 1 || link[n] != '\0')
		return 0;
	return ino;
}

static int pid_cmp(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;

	return (x > y) - (x < y);
}

/* The sockets among inodes[0, n) the fds of folder dir (a process's fd/) are open on, into out
 * (at most max; out may be NULL with max 1: is there one?). How many, or -errno. */
static int fd_sockets(const char *dir, const uint64_t *inodes, size_t n, uint64_t *out, size_t max)
{
	struct dirent *e;
	size_t cnt = 0;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while (cnt < max && (e = readdir(d))) {
		char fn[PATH_MAX + 300], link[64];
		ssize_t l;
		uint64_t ino;

		if (e->d_name[0] == '.')
			continue;
		snprintf(fn, sizeof(fn), "%s/%s", dir, e->d_name);
		l = readlink(fn, link, sizeof(link) - 1);
		if (l <= 0)
			continue;
		link[l] = '\0';
		ino = st_tls_socket_inode(link);
		for (size_t i = 0; ino && i < n; i++) {
			if (inodes[i] != ino)
				continue;
			if (out)
				out[cnt] = ino;
			cnt++;
			break;
		}
	}
	closedir(d);
	return (int)cnt;
}

int st_tls_socket_owners(const char *proc_root, const uint64_t *inodes, size_t n, pid_t *out,
			 size_t max)
{
	struct dirent *pe;
	size_t cnt = 0;
	DIR *pd;

	if (!n)
		return 0;
	pd = opendir(proc_root);
	if (!pd)
		return -errno;
	while ((pe = readdir(pd)) && cnt < max) {
		char dn[PATH_MAX];
		char *end;
		long pid = strtol(pe->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		snprintf(dn, sizeof(dn), "%s/%ld/fd", proc_root, pid);
		if (fd_sockets(dn, inodes, n, NULL, 1) > 0)
			out[cnt++] = (pid_t)pid;
	}
	closedir(pd);
	qsort(out, cnt, sizeof(*out), pid_cmp);
	return (int)cnt;
}

static int cgroup_walk(const char *dir, pid_t *out, size_t max, size_t *n, int depth)
{
	char fn[PATH_MAX];
	struct dirent *e;
	long pid;
	FILE *f;
	DIR *d;

	snprintf(fn, sizeof(fn), "%s/cgroup.procs", dir);
	f = fopen(fn, "re");
	if (!f)
		return -errno;
	while (*n < max && fscanf(f, "%ld", &pid) == 1)
		out[(*n)++] = (pid_t)pid;
	fclose(f);
	if (depth >= 16)
		return 0;
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_type != DT_DIR || e->d_name[0] == '.')
			continue;
		snprintf(fn, sizeof(fn), "%s/%s", dir, e->d_name);
		cgroup_walk(fn, out, max, n, depth + 1);
	}
	closedir(d);
	return 0;
}

int st_tls_cgroup_pids(const char *cgroup, pid_t *out, size_t max)
{
	size_t n = 0;
	int err = cgroup_walk(cgroup, out, max, &n, 0);

	if (err)
		return err;
	qsort(out, n, sizeof(*out), pid_cmp);
	return (int)n;
}

int st_tls_established(const char *proc_root, pid_t pid, const uint16_t *ports, size_t n_ports,
		       uint64_t *out, size_t max)
{
	char fn[PATH_MAX];
	uint64_t ino[4096];
	size_t n = 0;

	/* the process's own network namespace */
	snprintf(fn, sizeof(fn), "%s/%d/net/tcp", proc_root, (int)pid);
	tcp_file(fn, ports, n_ports, 0x01, ino, 4096, &n);
	snprintf(fn, sizeof(fn), "%s/%d/net/tcp6", proc_root, (int)pid);
	tcp_file(fn, ports, n_ports, 0x01, ino, 4096, &n);
	if (!n)
		return 0;
	snprintf(fn, sizeof(fn), "%s/%d/fd", proc_root, (int)pid);
	return fd_sockets(fn, ino, n, out, max);
}
