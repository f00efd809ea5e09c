# Palisade native build. Everything lands under build/ (gitignored).
#
#   make [all]   build every native artifact (incremental)
#   make clean   remove build/
#
# Adding a C program: append its binary to C_PROGRAMS and add one line naming
# its sources below; the shared recipe does the rest. A program that needs
# libraries gets a target-specific variable, e.g.
#   $(BIN_DIR)/palisade-loader: LDLIBS += -lbpf

BUILD_DIR := build
BIN_DIR   := $(BUILD_DIR)/bin

# CFLAGS stays overridable (optimisation, debug info); the language standard
# and the warnings policy are not.
CFLAGS   ?= -O2 -g
C_STD    := -std=c11
WARNINGS := -Wall -Wextra -Werror

C_PROGRAMS := \
	$(BIN_DIR)/palisade-cni \
	$(BIN_DIR)/palisade-podserver \
	$(BIN_DIR)/palisade-prober \
	$(BIN_DIR)/palisade-pause

.DEFAULT_GOAL := all
.DELETE_ON_ERROR:
.PHONY: all clean

all: $(C_PROGRAMS)

# One line per program: its sources.
$(BIN_DIR)/palisade-cni:       cni/palisade-cni.c
$(BIN_DIR)/palisade-podserver: e2e/podserver/podserver.c
$(BIN_DIR)/palisade-prober:    e2e/prober/prober.c
$(BIN_DIR)/palisade-pause:     e2e/pause/pause.c

# The pause program runs FROM scratch (scripts/build-images.sh): static.
$(BIN_DIR)/palisade-pause: LDFLAGS += -static

# Shared recipe; a change to this Makefile (flags) rebuilds the programs.
$(C_PROGRAMS): Makefile | $(BIN_DIR)
	$(CC) $(C_STD) $(WARNINGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c,$^) $(LDLIBS)

$(BIN_DIR):
	mkdir -p $@

# The eBPF objects and the libbpf loader keep their rules beside their sources;
# each fragment adds its artifacts to `all`.
-include bpf/bpf.mk
-include datapath/loader/loader.mk

clean:
	rm -rf $(BUILD_DIR)
