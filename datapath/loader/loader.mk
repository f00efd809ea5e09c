# palisade-loader and palisade-flow-reader (libbpf), and the tiny eBPF objects the loader's tests load.
# Included by the top-level Makefile, whose variables and flags it uses.

LOADER_DIR     := datapath/loader
LOADER_SOURCES := $(LOADER_DIR)/palisade-loader.c $(LOADER_DIR)/wire.c
LOADER_TEST_OBJS := $(BUILD_DIR)/loader/test.bpf.o $(BUILD_DIR)/loader/test-v2.bpf.o $(BUILD_DIR)/loader/rejected.bpf.o

all: $(BIN_DIR)/palisade-loader $(BIN_DIR)/palisade-flow-reader $(LOADER_TEST_OBJS)

# The agent's reader of the flow ring buffer (datapath/flow-reader.ts).
$(BIN_DIR)/palisade-flow-reader: datapath/flow-reader/palisade-flow-reader.c $(LOADER_DIR)/loader.mk Makefile | $(BIN_DIR)
	$(CC) $(C_STD) $(WARNINGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -lbpf -lelf -lz

$(BIN_DIR)/palisade-loader: $(LOADER_SOURCES) $(LOADER_DIR)/wire.h $(LOADER_DIR)/loader.mk Makefile | $(BIN_DIR)
	$(CC) $(C_STD) $(WARNINGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(LOADER_SOURCES) -lbpf -lelf -lz

# <asm/types.h> lives in the multiarch include directory, which clang does
# not search when targeting bpf.
$(BUILD_DIR)/loader/%.bpf.o: $(LOADER_DIR)/testdata/%.bpf.c $(LOADER_DIR)/loader.mk
	@mkdir -p $(@D)
	clang -O2 -g -target bpf -Wall -Werror -I/usr/include/$(shell $(CC) -dumpmachine) -c -o $@ $<

# The test object's next version (TEST_V2: its values grow), for the migration of pinned maps.
$(BUILD_DIR)/loader/test-v2.bpf.o: $(LOADER_DIR)/testdata/test.bpf.c $(LOADER_DIR)/loader.mk
	@mkdir -p $(@D)
	clang -O2 -g -target bpf -Wall -Werror -DTEST_V2 -I/usr/include/$(shell $(CC) -dumpmachine) -c -o $@ $<
