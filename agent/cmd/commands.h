/* SPDX-License-Identifier: GPL-2.0-only */
/* The shadowtap commands: each takes argv with argv[0] = the command's name
 * and returns the process exit status (ST_EXIT_*). */
#ifndef ST_COMMANDS_H
#define ST_COMMANDS_H

int cmd_capture(int argc, char **argv);
int cmd_flows(int argc, char **argv);
int cmd_shadow(int argc, char **argv);
int cmd_replay(int argc, char **argv);
int cmd_tee(int argc, char **argv);
int cmd_receive(int argc, char **argv);
int cmd_daemon(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_watch(int argc, char **argv);

/* The job kinds (job.h), one per live command, defined with it. */
struct st_job_kind;
extern const struct st_job_kind st_capture_kind;
extern const struct st_job_kind st_flows_kind;
extern const struct st_job_kind st_shadow_kind;
extern const struct st_job_kind st_tee_kind;
extern const struct st_job_kind st_watch_kind;
/* By command name, or NULL (daemon.c). */
const struct st_job_kind *st_job_kind_find(const char *name);

#endif /* ST_COMMANDS_H */
