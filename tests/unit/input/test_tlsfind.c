/* SPDX-License-Identifier: GPL-2.0-only */
/* What --tls finds in /proc (agent/input/tlsfind.c), on a fake proc tree built per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opts.h"
#include "tlsfind.h"

struct fx {
	char root[64];
};

static void put(const char *root, const char *rel, const char *text)
{
	char fn[512], dir[512], *slash;
	FILE *f;

	snprintf(fn, sizeof(fn), "%s/%s", root, rel);
	snprintf(dir, sizeof(dir), "%s", fn);
	for (char *p = dir + strlen(root) + 1; (slash = strchr(p, '/')); p = slash + 1) {
		*slash = '\0';
		mkdir(dir, 0755);
		*slash = '/';
	}
	f = fopen(fn, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->root, sizeof(f->root), "/tmp/st-tlsfind.XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root);
	if (system(cmd))
		return -1;
	free(f);
	return 0;
}

static void test_is_libssl(void **state)
{
	assert_true(st_tls_is_libssl("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
	assert_true(st_tls_is_libssl("/opt/openssl/lib64/libssl.so.1.1"));
	assert_true(st_tls_is_libssl("libssl.so"));
	assert_true(st_tls_is_libssl("/usr/lib/libssl.so.53")); /* LibreSSL */
	assert_false(st_tls_is_libssl("/usr/lib/x86_64-linux-gnu/libssl3.so")); /* NSS */
	assert_false(st_tls_is_libssl("/usr/lib/libsslx.so"));
	assert_false(st_tls_is_libssl("/usr/lib/libcrypto.so.3"));
}

static void test_is_libcrypto(void **state)
{
	assert_true(st_tls_is_libcrypto("/usr/lib/x86_64-linux-gnu/libcrypto.so.3"));
	assert_true(st_tls_is_libcrypto("/opt/openssl/lib/libcrypto.so.1.1"));
	assert_true(st_tls_is_libcrypto("libcrypto.so"));
	assert_false(st_tls_is_libcrypto("/usr/lib/libcryptopp.so.8"));
	assert_false(st_tls_is_libcrypto("/usr/lib/x86_64-linux-gnu/libssl.so.3"));
}

static void test_maps_line(void **state)
{
	char path[256];
	uint64_t ino;
	unsigned ma, mi;

	assert_int_equal(st_tls_parse_maps_line("7f74a1561000-7f74a15be000 r-xp 0001f000 fe:00 333427 "
						"                    /usr/lib/x86_64-linux-gnu/libssl.so.3\n",
						path, sizeof(path), &ino, &ma, &mi), 1);
	assert_string_equal(path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
	assert_int_equal(ino, 333427);
	assert_int_equal(ma, 0xfe);
	assert_int_equal(mi, 0);
	/* a path with spaces */
	assert_int_equal(st_tls_parse_maps_line("1000-2000 r-xp 00000000 08:01 12 /opt/my app/libssl.so.3",
						path, sizeof(path), &ino, &ma, &mi), 1);
	assert_string_equal(path, "/opt/my app/libssl.so.3");
	assert_int_equal(ma, 8);
	assert_int_equal(mi, 1);
	/* anonymous, heap, deleted: not files */
	assert_int_equal(st_tls_parse_maps_line("1000-2000 rw-p 00000000 00:00 0 \n", path,
						sizeof(path), &ino, &ma, &mi), 0);
	assert_int_equal(st_tls_parse_maps_line("1000-2000 rw-p 00000000 00:00 0   [heap]\n", path,
						sizeof(path), &ino, &ma, &mi), 0);
	assert_int_equal(st_tls_parse_maps_line("1000-2000 r-xp 00000000 08:01 99 /usr/lib/libssl.so.3 (deleted)\n",
						path, sizeof(path), &ino, &ma, &mi), 0);
	assert_int_equal(st_tls_parse_maps_line("garbage\n", path, sizeof(path), &ino, &ma, &mi), -1);
	/* a path longer than the buffer */
	assert_int_equal(st_tls_parse_maps_line("1000-2000 r-xp 00000000 08:01 12 /a/very/long/path/libssl.so.3",
						path, 8, &ino, &ma, &mi), -1);
}

static void test_find_libssl(void **state)
{
	struct fx *f = *state;
	struct st_tls_libref libs[4];
	const char *other;
	bool jvm;

	put(f->root, "100/maps",
	    "5600-5700 r-xp 00000000 fe:00 11 /usr/sbin/nginx\n"
	    "7f00-7f10 r--p 00000000 fe:00 333427 /usr/lib/x86_64-linux-gnu/libssl.so.3\n"
	    "7f10-7f20 r-xp 0001f000 fe:00 333427 /usr/lib/x86_64-linux-gnu/libssl.so.3\n"
	    "7f20-7f30 r-xp 00000000 fe:00 333400 /usr/lib/x86_64-linux-gnu/libcrypto.so.3\n"
	    "7f30-7f40 r-xp 00000000 fe:01 777 /var/lib/c1/usr/lib/libssl.so.1.1\n"
	    "7fff-8000 rw-p 00000000 00:00 0 [stack]\n");
	assert_int_equal(st_tls_find_libssl(f->root, 100, libs, 4, &jvm, &other), 2);
	assert_string_equal(libs[0].path, "/usr/lib/x86_64-linux-gnu/libssl.so.3");
	assert_int_equal(libs[0].ino, 333427);
	assert_int_equal(libs[1].ino, 777);
	assert_int_equal(libs[1].dev_minor, 1);
	assert_false(jvm);
	assert_null(other);
	assert_int_equal(st_tls_find_libssl(f->root, 100, libs, 1, NULL, NULL), 1); /* capped */

	put(f->root, "200/maps",
	    "7f00-7f10 r-xp 00000000 fe:00 5 /usr/lib/jvm/java-17/lib/server/libjvm.so\n"
	    "7f10-7f20 r-xp 00000000 fe:00 6 /usr/lib/x86_64-linux-gnu/libgnutls.so.30\n");
	assert_int_equal(st_tls_find_libssl(f->root, 200, libs, 4, &jvm, &other), 0);
	assert_true(jvm);
	assert_string_equal(other, "GnuTLS");
	assert_int_equal(st_tls_find_libssl(f->root, 300, libs, 4, NULL, NULL), -ENOENT);
	/* the libcrypto next to it */
	assert_int_equal(st_tls_find_libcrypto(f->root, 100, libs), 1);
	assert_int_equal(libs[0].ino, 333400);
	assert_int_equal(st_tls_find_libcrypto(f->root, 200, libs), 0);
	assert_int_equal(st_tls_find_libcrypto(f->root, 300, libs), -ENOENT);
}

int main(void);

/* Keys mode needs a libcrypto exporting EVP_KDF_derive and a libssl calling it there
 * (OpenSSL 3: this host's), and the functions' file offsets for the probes. */
static void test_keys_capable(void **state)
{
	static const char *const names[] = { "main", "no_such_function_here" };
	const char *ssl = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
	const char *crypto = "/usr/lib/x86_64-linux-gnu/libcrypto.so.3";
	uint8_t file[16];
	uint64_t offs[2];
	char why[256];
	FILE *f;

	if (access(ssl, R_OK) || access(crypto, R_OK)) {
		print_message("no OpenSSL 3 here: keys checks skipped\n");
	} else {
		assert_true(st_tls_elf_imports(ssl, "EVP_KDF_derive"));
		assert_false(st_tls_elf_has_symbol(ssl, "EVP_KDF_derive"));
		assert_true(st_tls_elf_has_symbol(crypto, "EVP_KDF_derive"));
		assert_true(st_tls_keys_capable(ssl, crypto, why, sizeof(why)));
		assert_false(st_tls_keys_capable(ssl, NULL, why, sizeof(why)));
		assert_non_null(strstr(why, "no libcrypto"));
		/* a "libcrypto" without EVP_KDF_derive (OpenSSL 1.1, LibreSSL, BoringSSL) */
		assert_false(st_tls_keys_capable(ssl, ssl, why, sizeof(why)));
		assert_non_null(strstr(why, "no EVP_KDF_derive"));
		/* a libssl that does not call it (here: libcrypto itself) */
		assert_false(st_tls_keys_capable(crypto, crypto, why, sizeof(why)));
		assert_non_null(strstr(why, "does not call EVP_KDF_derive"));
	}
	assert_true(st_tls_elf_imports("/proc/self/exe", "_cmocka_run_group_tests"));
	assert_false(st_tls_elf_imports("/proc/self/exe", "st_tls_elf_imports"));
	/* the offset of main in this binary's file holds main's code */
	assert_int_equal(st_tls_elf_func_offsets("/proc/self/exe", names, 2, offs), 1);
	assert_true(offs[0] > 0);
	assert_int_equal(offs[1], 0);
	f = fopen("/proc/self/exe", "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, (long)offs[0], SEEK_SET), 0);
	assert_int_equal(fread(file, 1, sizeof(file), f), sizeof(file));
	fclose(f);
	assert_memory_equal(file, (const void *)main, sizeof(file));
	assert_int_equal(st_tls_elf_func_offsets("/etc/hostname", names, 2, offs), -ENOEXEC);
}

static void test_explain(void **state)
{
	struct fx *f = *state;
	char why[512], exe[512];

	put(f->root, "200/maps", "7f00-7f10 r-xp 00000000 fe:00 5 /usr/lib/jvm/lib/server/libjvm.so\n");
	st_tls_explain(f->root, 200, why, sizeof(why));
	assert_non_null(strstr(why, "Java"));
	put(f->root, "201/maps", "7f10-7f20 r-xp 00000000 fe:00 6 /usr/lib/libgnutls.so.30\n");
	st_tls_explain(f->root, 201, why, sizeof(why));
	assert_non_null(strstr(why, "GnuTLS"));
	/* exe: this test binary (an ELF without SSL_read or .go.buildinfo) */
	put(f->root, "202/maps", "5600-5700 r-xp 00000000 fe:00 11 /usr/bin/x\n");
	snprintf(exe, sizeof(exe), "%s/202/exe", f->root);
	assert_int_equal(symlink("/proc/self/exe", exe), 0);
	st_tls_explain(f->root, 202, why, sizeof(why));
	assert_non_null(strstr(why, "no TLS library mapped"));
	st_tls_explain(f->root, 999, why, sizeof(why));
	assert_non_null(strstr(why, "gone"));

	/* a Go program (.go.buildinfo) and a binary with SSL_read in it, made with objcopy */
	if (system("command -v objcopy >/dev/null")) {
		print_message("objcopy missing: Go and static-OpenSSL cases not checked\n");
		return;
	}
	char cmd[1024];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && echo go >sec && objcopy --add-section .go.buildinfo=sec /proc/self/exe go.elf"
		 " && objcopy --add-symbol SSL_read=.text:0x10,function,global /proc/self/exe ssl.elf",
		 f->root);
	assert_int_equal(system(cmd), 0);
	put(f->root, "203/maps", "5600-5700 r-xp 00000000 fe:00 11 /srv/app\n");
	snprintf(exe, sizeof(exe), "%s/203/exe", f->root);
	snprintf(cmd, sizeof(cmd), "%s/go.elf", f->root);
	assert_int_equal(symlink(cmd, exe), 0);
	st_tls_explain(f->root, 203, why, sizeof(why));
	assert_non_null(strstr(why, "Go's crypto/tls"));
	put(f->root, "204/maps", "5600-5700 r-xp 00000000 fe:00 11 /srv/app\n");
	snprintf(exe, sizeof(exe), "%s/204/exe", f->root);
	snprintf(cmd, sizeof(cmd), "%s/ssl.elf", f->root);
	assert_int_equal(symlink(cmd, exe), 0);
	st_tls_explain(f->root, 204, why, sizeof(why));
	assert_non_null(strstr(why, "linked into the binary"));
	assert_non_null(strstr(why, "--libssl"));
}

static void test_elf(void **state)
{
	assert_true(st_tls_elf_has_symbol("/proc/self/exe", "main"));
	assert_true(st_tls_elf_has_symbol("/proc/self/exe", "st_tls_parse_maps_line"));
	assert_false(st_tls_elf_has_symbol("/proc/self/exe", "SSL_read"));
	assert_true(st_tls_elf_has_section("/proc/self/exe", ".text"));
	assert_false(st_tls_elf_has_section("/proc/self/exe", ".go.buildinfo"));
	assert_false(st_tls_elf_has_symbol("/nonexistent", "main"));
	assert_false(st_tls_elf_has_section("/etc/hostname", ".text"));
}

static void test_listen_and_owners(void **state)
{
	struct fx *f = *state;
	uint64_t ino[8];
	pid_t pids[8];
	char fn[512];

	/* port 443 = 01BB (LISTEN 0A), 8080 = 1F90 (LISTEN), 443 ESTABLISHED (01) */
	put(f->root, "net/tcp",
	    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	    "   0: 0100E70A:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0\n"
	    "   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5002 1 0000000000000000 100 0 0 10 0\n"
	    "   2: 0100E70A:01BB 0200E70A:C350 01 00000000:00000000 00:00000000 00000000     0        0 5003 1 0000000000000000 100 0 0 10 0\n");
	put(f->root, "net/tcp6",
	    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	    "   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6001 1 0000000000000000 100 0 0 10 0\n");
	uint16_t ports[] = { 443 };
	assert_int_equal(st_tls_listen_inodes(f->root, ports, 1, ino, 8), 2);
	assert_int_equal(ino[0], 5001);
	assert_int_equal(ino[1], 6001);
	uint16_t none[] = { 9 };
	assert_int_equal(st_tls_listen_inodes(f->root, none, 1, ino, 8), 0);

	/* pid 300 holds socket 6001 (fd 4), pid 301 another socket, pid 302 a file */
	put(f->root, "300/fd/.keep", "");
	put(f->root, "301/fd/.keep", "");
	put(f->root, "302/fd/.keep", "");
	snprintf(fn, sizeof(fn), "%s/300/fd/4", f->root);
	assert_int_equal(symlink("socket:[6001]", fn), 0);
	snprintf(fn, sizeof(fn), "%s/301/fd/3", f->root);
	assert_int_equal(symlink("socket:[7777]", fn), 0);
	snprintf(fn, sizeof(fn), "%s/302/fd/3", f->root);
	assert_int_equal(symlink("/var/log/x", fn), 0);
	assert_int_equal(st_tls_socket_owners(f->root, ino, 2, pids, 8), 1);
	assert_int_equal(pids[0], 300);
	assert_int_equal(st_tls_socket_owners(f->root, ino, 0, pids, 8), 0);

	assert_int_equal(st_tls_socket_inode("socket:[123]"), 123);
	assert_int_equal(st_tls_socket_inode("socket:[123]x"), 0);
	assert_int_equal(st_tls_socket_inode("pipe:[123]"), 0);
}

/* The sessions a probe attached now would join in the middle: the process's established
 * sockets on a --port, from its own namespace's tables and fds. */
static void test_established(void **state)
{
	struct fx *f = *state;
	uint16_t ports[] = { 443 };
	uint64_t ino[8];
	char fn[512];

	/* 443 listening (5001), 443 established (5003, 5004 v6), 8080 established (5005) */
	put(f->root, "400/net/tcp",
	    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	    "   0: 0100E70A:01BB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 100 0 0 10 0\n"
	    "   1: 0100E70A:01BB 0200E70A:C350 01 00000000:00000000 00:00000000 00000000     0        0 5003 1 0000000000000000 100 0 0 10 0\n"
	    "   2: 0100E70A:1F90 0200E70A:C351 01 00000000:00000000 00:00000000 00000000     0        0 5005 1 0000000000000000 100 0 0 10 0\n");
	put(f->root, "400/net/tcp6",
	    "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
	    "   0: 00000000000000000000000001000000:01BB 00000000000000000000000002000000:C352 01 00000000:00000000 00:00000000 00000000     0        0 5004 1 0000000000000000 100 0 0 10 0\n");
	put(f->root, "400/fd/.keep", "");
	/* the process holds 5001, 5003, 5005 (not 5004: another process's) */
	snprintf(fn, sizeof(fn), "%s/400/fd/3", f->root);
	assert_int_equal(symlink("socket:[5001]", fn), 0);
	snprintf(fn, sizeof(fn), "%s/400/fd/4", f->root);
	assert_int_equal(symlink("socket:[5003]", fn), 0);
	snprintf(fn, sizeof(fn), "%s/400/fd/5", f->root);
	assert_int_equal(symlink("socket:[5005]", fn), 0);
	assert_int_equal(st_tls_established(f->root, 400, ports, 1, ino, 8), 1);
	assert_int_equal(ino[0], 5003);
	snprintf(fn, sizeof(fn), "%s/400/fd/6", f->root);
	assert_int_equal(symlink("socket:[5004]", fn), 0);
	assert_int_equal(st_tls_established(f->root, 400, ports, 1, ino, 8), 2);
	assert_int_equal(st_tls_established(f->root, 400, ports, 1, ino, 1), 1); /* capped */
	assert_int_equal(st_tls_established(f->root, 401, ports, 1, ino, 8), 0);
}

static void test_cgroup_pids(void **state)
{
	struct fx *f = *state;
	char cg[256];
	pid_t pids[8];

	put(f->root, "cg/cgroup.procs", "42\n7\n");
	put(f->root, "cg/child/cgroup.procs", "99\n");
	put(f->root, "cg/child/grand/cgroup.procs", "");
	snprintf(cg, sizeof(cg), "%s/cg", f->root);
	assert_int_equal(st_tls_cgroup_pids(cg, pids, 8), 3);
	assert_int_equal(pids[0], 7);
	assert_int_equal(pids[1], 42);
	assert_int_equal(pids[2], 99);
	assert_int_equal(st_tls_cgroup_pids(cg, pids, 2), 2);
	snprintf(cg, sizeof(cg), "%s/nope", f->root);
	assert_true(st_tls_cgroup_pids(cg, pids, 8) < 0);
}

/* --tls and --libssl as options: rows, getopt entries, and the checks. */
static void test_options(void **state)
{
	struct st_target t = { 0 };

	assert_int_equal(st_target_opt(&t, ST_OPT_TLS, NULL), 1);
	assert_true(t.tls);
	memset(&t, 0, sizeof(t));
	assert_int_equal(st_target_opt(&t, ST_OPT_LIBSSL, "/opt/app/bin/server"), 1);
	assert_true(t.tls); /* implied */
	assert_int_equal(t.n_libssl, 1);
	assert_string_equal(t.libssl[0], "/opt/app/bin/server");
	for (int i = 1; i < ST_MAX_LIBSSL_CLI; i++)
		assert_int_equal(st_target_opt(&t, ST_OPT_LIBSSL, "/x"), 1);
	assert_int_equal(st_target_opt(&t, ST_OPT_LIBSSL, "/x"), -1);
	assert_int_equal(st_target_opt(&t, ST_OPT_LIBSSL, ""), -1);

	/* --tls-mode implies --tls; --keylog needs the keys */
	{
		const struct st_opt *mode = NULL, *keylog = NULL;
		char err[128] = "";

		for (size_t i = 0; i < st_target_opts_n; i++) {
			if (!strcmp(st_target_opts[i].name, "tls-mode"))
				mode = &st_target_opts[i];
			if (!strcmp(st_target_opts[i].name, "keylog"))
				keylog = &st_target_opts[i];
		}
		assert_non_null(mode);
		assert_non_null(keylog);
		memset(&t, 0, sizeof(t));
		assert_int_equal(st_opt_set(mode, &t, "keys", "--tls-mode"), 0);
		assert_true(t.tls);
		assert_int_equal(t.tls_mode, ST_TLSM_KEYS);
		assert_int_equal(st_opt_set(mode, &t, "calls", "--tls-mode"), 0);
		assert_int_equal(t.tls_mode, ST_TLSM_CALLS);
		assert_int_equal(mode->fn(&t, "fast", err, sizeof(err)), -1);
		assert_non_null(strstr(err, "auto, calls or keys"));
		t.cgroup = "/sys/fs/cgroup/x";
		assert_int_equal(st_target_add_port(&t, "443"), 0);
		assert_int_equal(st_opt_set(keylog, &t, "/tmp/k.log", "--keylog"), 0);
		assert_int_equal(st_target_check(&t, "flows"), -1); /* calls mode reads no secret */
		t.tls_mode = ST_TLSM_AUTO;
		assert_int_equal(st_target_check(&t, "flows"), 0);
		t.tls = false; /* --keylog alone: a ciphertext capture */
		assert_int_equal(st_target_check(&t, "capture"), 0);
		t.keylog = "";
		assert_int_equal(st_target_check(&t, "capture"), -1);
	}

	/* --attach/--exit-on-detach are about packet hooks */
	memset(&t, 0, sizeof(t));
	t.iface = "lo";
	t.tls = true;
	assert_int_equal(st_target_add_port(&t, "443"), 0);
	assert_int_equal(st_target_check(&t, "capture"), 0);
	t.exit_on_detach = true;
	assert_int_equal(st_target_check(&t, "capture"), -1);
	t.exit_on_detach = false;
	t.attach = ST_ATTACH_CLSACT;
	assert_int_equal(st_target_check(&t, "capture"), -1);

	/* the optparse rows */
	{
		const struct st_opt *tls = NULL, *lib = NULL;

		for (size_t i = 0; i < st_target_opts_n; i++) {
			if (!strcmp(st_target_opts[i].name, "tls"))
				tls = &st_target_opts[i];
			if (!strcmp(st_target_opts[i].name, "libssl"))
				lib = &st_target_opts[i];
		}
		assert_non_null(tls);
		assert_non_null(lib);
		memset(&t, 0, sizeof(t));
		assert_int_equal(st_opt_set(tls, &t, NULL, "--tls"), 0);
		assert_true(t.tls);
		memset(&t, 0, sizeof(t));
		assert_int_equal(st_opt_set(lib, &t, "/usr/lib/libssl.so.3", "--libssl"), 0);
		assert_int_equal(st_opt_set(lib, &t, "/opt/b", "--libssl"), 0);
		assert_true(t.tls);
		assert_int_equal(t.n_libssl, 2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_is_libssl),
		cmocka_unit_test(test_is_libcrypto),
		cmocka_unit_test(test_maps_line),
		cmocka_unit_test_setup_teardown(test_find_libssl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_explain, setup, teardown),
		cmocka_unit_test(test_elf),
		cmocka_unit_test(test_keys_capable),
		cmocka_unit_test_setup_teardown(test_established, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_and_owners, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cgroup_pids, setup, teardown),
		cmocka_unit_test(test_options),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
