/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's control socket: a unix stream socket, mode 0600 (root only). A
 * client connects, writes one command line ("status", "reload"), and reads the
 * answer until the daemon closes. `shadowtap ctl` is that client.
 *
 * The server runs in the agent's event loop and never waits on a client (the
 * loop drains the ring): st_ctl__fd() is an epoll of its own over the listening
 * socket, the clients and a timer, readable when any of them is. Each client's
 * line is read as it arrives; a client silent for ST_CTL_WAIT_MS is dropped, and
 * at most ST_CTL_CLIENTS_MAX wait at once (a new one takes the place of the one
 * waiting longest). The answer goes in sends that never wait.
 */
#ifndef ST_CTL_H
#define ST_CTL_H

#include <stddef.h>
#include <stdio.h>

#define ST_CTL_SOCKET_DEFAULT "/run/shadowtap/ctl.sock"
#define ST_CTL_WAIT_MS 2000
#define ST_CTL_CLIENTS_MAX 16

struct st_ctl;

/* Answers one command (its first word, then the rest of the line) into f; 0 or -1 (unknown). */
typedef int (*st_ctl_fn)(void *ctx, const char *cmd, const char *args, FILE *f);

/*
 * Listens at path (its folder is created 0700 if missing). A stale socket of a dead daemon
 * is replaced; a live one is not: NULL with the reason in err ("another daemon listens").
 */
struct st_ctl *st_ctl__listen(const char *path, st_ctl_fn fn, void *ctx, char *err, size_t errlen);
int st_ctl__fd(const struct st_ctl *c);
/* Accepts, reads, answers and drops what is due (call when the fd is readable). */
void st_ctl__run(struct st_ctl *c);
/* Closes and removes the socket. Called from a command's st_ctl_fn (a reload that moves the
 * socket), it takes effect when st_ctl__run() returns, after that command's answer. */
void st_ctl__close(struct st_ctl *c);

/* The client: sends cmd, copies the answer to out. 0, or -1 after one line on stderr. */
int st_ctl_request(const char *path, const char *cmd, FILE *out);

#endif /* ST_CTL_H */
