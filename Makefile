# SPDX-License-Identifier: GPL-2.0-only
# shadowtap build. `make` builds build/shadowtap; `make test`, `make demo`,
# `make bench`, `make fuzz` install what they need first (tools/install-deps.sh).
# V=1 shows commands. SAN=1 builds user space with ASan+UBSan.

BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
CC ?= gcc
CLANG ?= clang
BPFTOOL ?= bpftool
PKG_CONFIG ?= pkg-config
V ?= 0
SAN ?= 0
# The flavours `make test` and `make fuzz` build (and `make clean` removes).
SAN_BUILD := build/san
FUZZ_BUILD := build/fuzzbuild

# The builds `make test` runs itself use every CPU (CI calls plain `make test`).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' -e 's/s390x/s390/')
# clang -target bpf does not search the host's multiarch include dirs (asm/types.h).
CLANG_SYS_INCLUDES = $(shell $(CLANG) -v -E - </dev/null 2>&1 \
	| sed -n '/<...> search starts here:/,/End of search list./{ s| \(/.*\)|-idirafter \1|p }')

WARN := -Wall -Wextra -Wno-unused-parameter -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(SAN),1)
# The sanitizer flavour (make test's): -O1, as AddressSanitizer's documentation advises, and
# line tables only (-g1: ASan's and UBSan's stacks still name file and line). -O2 -g built it
# in 132 CPU-seconds, -O1 -g1 in 72, on the same two cores.
CFLAGS ?= -O1 -g1
else
CFLAGS ?= -O2 -g
endif
# User-space libraries: pkg-config's answer when it has one, else the Debian names.
# inih reads the daemon's config file; libmicrohttpd serves its metrics (docs/DAEMON.md);
# rdkafka: tee/receive --kafka (docs/KAFKA.md); libnghttp2: HTTP/2's HPACK (docs/HTTP2.md).
PC_MODULES := libbpf libelf zlib libpcap inih libmicrohttpd openssl rdkafka libnghttp2
PC_LIBS := $(shell $(PKG_CONFIG) --libs $(PC_MODULES) 2>/dev/null)
# libm (tap compare's statistics and report) and pthread (its worker) are the C library's.
LDLIBS ?= $(if $(PC_LIBS),$(PC_LIBS),-lbpf -lelf -lz -lpcap -linih -lmicrohttpd -lssl -lcrypto -lrdkafka -lnghttp2) -lm -lpthread
# CPPFLAGS (dpkg-buildflags' -D_FORTIFY_SOURCE) goes to every user-space compile, not to BPF.
# One -I per agent folder (the layers: docs/ARCHITECTURE.md), so `#include "x.h"` works from
# anywhere; the repository's root for the BPF headers the agent shares (`#include "bpf/x.h"`).
AGENT_DIRS := $(patsubst %/,%,$(sort $(dir $(wildcard agent/*/*.[ch]))))
AGENT_INC := $(addprefix -I,$(AGENT_DIRS)) -I.
ST_CFLAGS := $(CPPFLAGS) $(CFLAGS) -std=gnu11 $(WARN) -D_GNU_SOURCE -I$(BUILD) $(AGENT_INC) -MMD -MP
ifeq ($(SAN),1)
ST_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -MMD -MP

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))

AGENT_SRCS := $(wildcard agent/*/*.c)
AGENT_OBJS := $(patsubst agent/%.c,$(BUILD)/agent/%.o,$(AGENT_SRCS))
# The commands (agent/cmd/: and the daemon that runs them as jobs) stay out of the library:
# it is every other folder, the engines. A test that drives a command links its object.
CMD_OBJS := $(filter $(BUILD)/agent/cmd/%,$(AGENT_OBJS))
LIB_OBJS := $(filter-out $(CMD_OBJS),$(AGENT_OBJS))
LIB := $(BUILD)/libshadowtap.a

# Unit tests mirror the tree: tests/unit/FOLDER/test_X.c tests agent/FOLDER/X.c (the
# exceptions: tests/README.md). Objects mirror it too; binaries are flat: $(BUILD)/tests/test_X.
UNIT_SRCS := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS := $(addprefix $(BUILD)/tests/,$(basename $(notdir $(UNIT_SRCS))))
UNIT_OBJS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%.o,$(UNIT_SRCS))
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(patsubst tests/bpf/%.c,$(BUILD)/tests/%,$(BPFT_SRCS))
BPFT_OBJS := $(addsuffix .o,$(BPFT_BINS))

# Measurement tools (tools/*.c: progcost), built with the agent.
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_BINS := $(patsubst tools/%.c,$(BUILD)/tools/%,$(TOOL_SRCS))
TOOL_OBJS := $(addsuffix .o,$(TOOL_BINS))

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_LIB_OBJS := $(patsubst $(BUILD)/agent/%.o,$(BUILD)/fuzzobj/%.o,$(LIB_OBJS))
FUZZ_CFLAGS := $(CPPFLAGS) -g -O1 -std=gnu11 -D_GNU_SOURCE -I$(BUILD) $(AGENT_INC) -MMD -MP \
	-fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.PHONY: all test check unit bpf-tests fuzz fuzz-build demo bench install clean deps deps-check

all: $(BUILD)/shadowtap $(BUILD)/shadowtap.8 $(TOOL_BINS)

deps:
	$(Q)tools/install-deps.sh

deps-check: $(BUILD)/.deps-ok
$(BUILD)/.deps-ok: tools/check-build-deps.sh
	$(Q)mkdir -p $(@D)
	$(Q)CLANG=$(CLANG) BPFTOOL=$(BPFTOOL) CC=$(CC) tools/check-build-deps.sh
	$(Q)touch $@

# Static pattern rules throughout: their targets are explicit, so make never takes the
# BPF object, the skeleton or a test's object for an intermediate file and deletes it
# (which made the next `make` rebuild everything that includes the skeleton).
$(BPF_OBJS): $(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c | $(BUILD)/.deps-ok
	$(call msg,BPF,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MF $(@:.o=.d) -MT $@ $(CLANG_SYS_INCLUDES) -c $< -o $@.tmp.o
	$(Q)$(BPFTOOL) gen object $@ $@.tmp.o
	$(Q)rm -f $@.tmp.o

$(SKELS): $(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(AGENT_OBJS): $(BUILD)/agent/%.o: agent/%.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ST_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/shadowtap: $(CMD_OBJS) $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The manual page, from the binary's own option tables (the same rows as --help).
$(BUILD)/shadowtap.8: $(BUILD)/shadowtap
	$(call msg,MAN,$@)
	$(Q)$< --man >$@

$(UNIT_OBJS): $(BUILD)/tests/unit/%.o: tests/unit/%.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ST_CFLAGS) -Itests/unit -c $< -o $@
# Each unit binary from its object, wherever its folder.
$(foreach src,$(UNIT_SRCS),$(eval $(BUILD)/tests/$(basename $(notdir $(src))): \
	$(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%.o,$(src))))
$(BPFT_OBJS): $(BUILD)/tests/%.o: tests/bpf/%.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ST_CFLAGS) -c $< -o $@
# Tests that call a command (or the daemon) link its object and the other commands' kinds.
$(BUILD)/tests/test_flows: $(BUILD)/agent/cmd/flows.o
$(BUILD)/tests/test_jobs: $(filter-out $(BUILD)/agent/cmd/main.o,$(CMD_OBJS))
$(BPFT_BINS): $(BUILD)/tests/%: $(BUILD)/tests/%.o
$(UNIT_BINS) $(BPFT_BINS): $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter-out $(LIB),$^) $(LIB) -lcmocka $(LDLIBS)

$(TOOL_OBJS): $(BUILD)/tools/%.o: tools/%.c | $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(ST_CFLAGS) -c $< -o $@
$(TOOL_BINS): $(BUILD)/tools/%: $(BUILD)/tools/%.o $(LIB)
	$(call msg,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(FUZZ_LIB_OBJS): $(BUILD)/fuzzobj/%.o: agent/%.c | $(SKELS)
	$(call msg,CC-FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -c $< -o $@
# Links $< and the objects, not $^: the fuzzer's .d file adds its headers to $^.
$(FUZZ_BINS): $(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJS)
	$(call msg,FUZZ,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJS) $(LDLIBS)

unit: $(UNIT_BINS)
bpf-tests: $(BPFT_BINS)
fuzz-build: $(FUZZ_BINS)

# The whole suite, user space built with ASan+UBSan; ends with "N passed, N failed".
# The agent first; the cmocka and fuzz binaries build beside the integration tests, which
# need only the agent (tests/run.sh, ST_BUILD_REST: make invocations, `;` between them).
test: deps
	$(Q)$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(SAN_BUILD) SAN=1 all
	$(Q)ST_BUILD=$(SAN_BUILD) ST_FUZZ_BUILD=$(FUZZ_BUILD) \
		ST_BUILD_REST="BUILD=$(SAN_BUILD) SAN=1 unit bpf-tests; BUILD=$(FUZZ_BUILD) fuzz-build" \
		tests/run.sh

# Same suite against an already-built tree, without installing anything.
check: all unit bpf-tests
	$(Q)ST_BUILD=$(BUILD) tests/run.sh

fuzz: deps
	$(Q)$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) fuzz-build
	$(Q)ST_FUZZ_BUILD=$(FUZZ_BUILD) ST_FUZZ_SECONDS=$${ST_FUZZ_SECONDS:-300} tests/fuzz/run.sh
	$(Q)$(MAKE) --no-print-directory all
	@echo "== differential smuggling run: $${ST_SMUGGLE_RANDOM:-2000} random shapes against nginx"
	$(Q)ST_BUILD=$(BUILD) ST_SMUGGLE_RANDOM=$${ST_SMUGGLE_RANDOM:-2000} \
		ST_SMUGGLE_SEED=$${ST_SMUGGLE_SEED:-$$(date +%s)} bash tests/integration/test_shadow_smuggle.sh
	@echo "== differential HTTP/2 run: $${ST_H2DIFF_CONNS:-3000} random connections"
	$(Q)ST_BUILD=$(BUILD) ST_H2DIFF_CONNS=$${ST_H2DIFF_CONNS:-3000} \
		ST_H2DIFF_SEED=$${ST_H2DIFF_SEED:-$$(date +%s)} bash tests/integration/test_shadow_h2diff.sh
	@echo "== Kafka receivers leaving a group: $${ST_KAFKA_LEAVE_ROUNDS:-40} rounds"
	$(Q)ST_BUILD=$(BUILD) ST_KAFKA_LEAVE_ROUNDS=$${ST_KAFKA_LEAVE_ROUNDS:-40} \
		bash tests/integration/test_kafka_leave.sh

demo: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)ST_BUILD=$(BUILD) tools/demo.sh

# Production cost (every configuration against no agent in the same run, veth and loopback),
# each program path alone, the BPF cost of large segments, the loss probe, flows vs tcpflow,
# replay, tap compare, --tls, HTTP/2, the load test generator vs wrk. About 35 minutes;
# ST_BENCH_QUICK=1: about 15.
bench: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)ST_BUILD=$(BUILD) tools/bench-prod.sh
	$(Q)ST_BUILD=$(BUILD) tools/bench.sh progcost bpfcost $(if $(filter 1,$(ST_BENCH_QUICK)),,loss)
	$(Q)ST_BUILD=$(BUILD) BENCH_CLOSE_SECS=$${BENCH_CLOSE_SECS:-$(if $(filter 1,$(ST_BENCH_QUICK)),2,4)} \
		BENCH_RUNS=$${BENCH_RUNS:-$(if $(filter 1,$(ST_BENCH_QUICK)),1,3)} tools/bench-flows.sh
	$(Q)ST_BUILD=$(BUILD) tools/bench-shadow.sh replay
	$(Q)ST_BUILD=$(BUILD) tools/bench-h2.sh
	$(Q)ST_BUILD=$(BUILD) tools/bench-compare.sh
	$(Q)ST_BUILD=$(BUILD) tools/bench-tls.sh
	$(Q)ST_BUILD=$(BUILD) ST_BENCH_ROUNDS=$${ST_BENCH_ROUNDS:-$(if $(filter 1,$(ST_BENCH_QUICK)),3,5)} \
		tools/bench-load.sh

# The binary, its manual page, the systemd unit (its paths follow PREFIX) and the example configuration
# (docs/DAEMON.md); an existing /etc/shadowtap/shadowtap.conf is never touched.
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
SYSCONF_DIR ?= /etc/shadowtap
MAN_DIR ?= $(PREFIX)/share/man
install: $(BUILD)/shadowtap $(BUILD)/shadowtap.8
	install -D -m 0755 $(BUILD)/shadowtap $(DESTDIR)$(PREFIX)/sbin/shadowtap
	install -D -m 0644 $(BUILD)/shadowtap.8 $(DESTDIR)$(MAN_DIR)/man8/shadowtap.8
	install -d -m 0755 $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(SYSCONF_DIR)
	sed 's|/usr/local/sbin/shadowtap|$(PREFIX)/sbin/shadowtap|g' tools/systemd/shadowtap.service \
		>$(DESTDIR)$(SYSTEMD_UNIT_DIR)/shadowtap.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/shadowtap.service
	install -m 0644 tools/systemd/shadowtap.conf.example $(DESTDIR)$(SYSCONF_DIR)/shadowtap.conf.example

clean:
	rm -rf $(BUILD) $(SAN_BUILD) $(FUZZ_BUILD)

-include $(wildcard $(BUILD)/bpf/*.d $(BUILD)/agent/*/*.d $(BUILD)/tests/*.d $(BUILD)/tests/unit/*/*.d \
	$(BUILD)/fuzzobj/*/*.d \
	$(BUILD)/fuzz/*.d $(BUILD)/tools/*.d)
