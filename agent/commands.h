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

#endif /* ST_COMMANDS_H */
