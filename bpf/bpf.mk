# eBPF objects and their unit-test runner; included by the top-level Makefile.
#
#   build/bpf/NAME.bpf.o           one per bpf/NAME.bpf.c
#   build/bpf/test-tagged.bpf.o    the fixtures' VLAN-metadata harness (bpf/tests/tagged.bpf.c)
#   build/bin/palisade-bpf-tests   BPF_PROG_TEST_RUN fixtures (run as root)
#   build/bin/palisade-prefilter-tests  the XDP prefilter's fixtures (bpf/tests/prefilter-tests.c)

BPF_OUT_DIR := $(BUILD_DIR)/bpf
BPF_OBJS    := $(patsubst bpf/%.bpf.c,$(BPF_OUT_DIR)/%.bpf.o,$(wildcard bpf/*.bpf.c))
BPF_HEADERS := $(wildcard bpf/lib/*.h)

BPF_CLANG  ?= clang
# UAPI headers come from /usr/include; the multiarch directory supplies the
# <asm/...> headers that clang's bpf target does not look for by itself.
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_x86 -I bpf/lib \
	-I /usr/include/$(shell $(CC) -dumpmachine) -Wall -Werror

all: $(BPF_OBJS) $(BPF_OUT_DIR)/test-tagged.bpf.o $(BIN_DIR)/palisade-bpf-tests $(BIN_DIR)/palisade-prefilter-tests

$(BPF_OUT_DIR)/%.bpf.o: bpf/%.bpf.c $(BPF_HEADERS) bpf/bpf.mk | $(BPF_OUT_DIR)
	$(BPF_CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BPF_OUT_DIR)/test-tagged.bpf.o: bpf/tests/tagged.bpf.c bpf/bpf.mk | $(BPF_OUT_DIR)
	$(BPF_CLANG) $(BPF_CFLAGS) -c $< -o $@

# The runner loads build/bpf/endpoint.bpf.o at run time (found next to it),
# so the objects are order-only: a new object does not relink the runner.
$(BIN_DIR)/palisade-bpf-tests: bpf/tests/run-tests.c $(BPF_HEADERS) bpf/bpf.mk | $(BIN_DIR) $(BPF_OBJS) $(BPF_OUT_DIR)/test-tagged.bpf.o
	$(CC) $(C_STD) $(WARNINGS) -I bpf/lib $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lbpf -lelf -lz $(LDLIBS)

$(BIN_DIR)/palisade-prefilter-tests: bpf/tests/prefilter-tests.c $(BPF_HEADERS) bpf/bpf.mk | $(BIN_DIR) $(BPF_OBJS)
	$(CC) $(C_STD) $(WARNINGS) -I bpf/lib $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lbpf -lelf -lz $(LDLIBS)

$(BPF_OUT_DIR):
	mkdir -p $@
