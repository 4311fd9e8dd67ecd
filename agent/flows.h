/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * `shadowtap flows`: every direction of every TCP connection, reassembled,
 * into one file each, from a pcap/pcapng file or from live capture.
 */
#ifndef ST_FLOWS_H
#define ST_FLOWS_H

/* argv[0] == "flows". Returns the exit code: 0 ok, 1 runtime error, 2 usage error. */
int cmd_flows(int argc, char **argv);

#endif /* ST_FLOWS_H */
