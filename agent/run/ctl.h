/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's control socket: a unix stream socket, mode 0600 (root only). A
 * client connects, writes one command line ("status", "reload"), and reads the
 * answer until the daemon closes. `shadowtap ctl` is that client.
 *
 * The server runs in the agent's event loop. A request is read without
 * blocking; a client that connects and says nothing within 100 ms is dropped,
 * so the loop (and the ring it drains) never waits on one.
 */
#ifndef ST_CTL_H
#define ST_CTL_H

#include <stddef.h>
#include <stdio.h>

#define ST_CTL_SOCKET_DEFAULT "/run/shadowtap/ctl.sock"

struct st_ctl;

/* Answers one command (its first word, then the rest of the line) into f; 0 or -1 (unknown). */
typedef int (*st_ctl_fn)(void *ctx, const char *cmd, const char *args, FILE *f);

/*
 * Listens at path (its folder is created 0700 if missing). A stale socket of a dead daemon
 * is replaced; a live one is not: NULL with the reason in err ("another daemon listens").
 */
struct st_ctl *st_ctl__listen(const char *path, st_ctl_fn fn, void *ctx, char *err, size_t errlen);
int st_ctl__fd(const struct st_ctl *c);
/* Accepts and answers what is waiting (call when the fd is readable). */
void st_ctl__run(struct st_ctl *c);
/* Closes and removes the socket. */
void st_ctl__close(struct st_ctl *c);

/* The client: sends cmd, copies the answer to out. 0, or -1 after one line on stderr. */
int st_ctl_request(const char *path, const char *cmd, FILE *out);

#endif /* ST_CTL_H */
