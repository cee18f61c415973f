# tandem — one Makefile. `make` builds bin/tandem; `make test` runs every test;
# `make bench` runs the benchmarks. Objects and dependency files live in build/.

CC        ?= cc
ARCH      ?= -march=native
OPT       ?= -O2
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CSTD      := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
DEPS_PKG  := json-c libpcre2-8 lapacke openblas libprotobuf-c libzmq
PKG_CFLAGS := $(shell pkg-config --cflags $(DEPS_PKG) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(DEPS_PKG) 2>/dev/null)
CFLAGS    += $(CSTD) $(OPT) $(ARCH) $(WARN) -g -MMD -MP -I. -Ibuild/gen $(PKG_CFLAGS)
LDLIBS    += $(PKG_LIBS) -lpthread -lm

SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# The wire schema's C code is generated from proto/tandem.proto into
# build/gen/proto/ (protoc-c) and compiled like any library source.
PROTO_GEN := build/gen/proto/tandem.pb-c.c build/gen/proto/tandem.pb-c.h
LIB_SRC   := $(wildcard kernels/*.c kernels/cpu/*.c weights/*.c engine/*.c proto/*.c edge/*.c cloud/*.c) \
             build/gen/proto/tandem.pb-c.c
TOOL_SRC  := $(wildcard tools/*.c)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
GOLD_SRC  := $(wildcard tests/golden/test_*.c)

REL_LIB   := $(LIB_SRC:%.c=build/rel/%.o)
SAN_LIB   := $(LIB_SRC:%.c=build/san/%.o)
REL_TOOL  := $(TOOL_SRC:%.c=build/rel/%.o)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=build/san/tests/%)
GOLD_BIN  := $(GOLD_SRC:tests/golden/%.c=build/rel/tests/%)

.PHONY: all test unit golden fuzz bench clean deps demo
# Keep objects made through pattern-rule chains (tests) between runs.
.SECONDARY:
all: bin/tandem

$(PROTO_GEN) &: proto/tandem.proto
	@mkdir -p build/gen
	protoc-c --c_out=build/gen $<

# Objects may include the generated header: generate it first.
$(REL_LIB) $(SAN_LIB) $(REL_TOOL) $(UNIT_SRC:tests/unit/%.c=build/san/tests/unit/%.o) \
  $(GOLD_SRC:tests/golden/%.c=build/rel/tests/golden/%.o): | $(PROTO_GEN)

bin/tandem: $(REL_LIB) $(REL_TOOL)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/rel/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

build/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -c -o $@ $<

build/san/tests/%: build/san/tests/unit/%.o $(SAN_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ -lcmocka $(LDLIBS)

# Unit tests of tools/ code that is not part of the library.
build/san/tests/test_wan_relay: build/san/tools/wan_relay.o

build/rel/tests/%: build/rel/tests/golden/%.o $(REL_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

# Fuzz targets: clang's libFuzzer with ASan/UBSan, run for a bounded time.
FUZZ_CC   ?= clang
FUZZ_SECONDS ?= 20
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_FLAGS := $(CSTD) -O1 -g -I. -Ibuild/gen -Wall -Wextra -Werror -Wno-unused-parameter \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all $(PKG_CFLAGS)

build/fuzz/%: tests/fuzz/%.c $(LIB_SRC) | $(PROTO_GEN)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c,$^) $(LDLIBS)

unit: $(UNIT_BIN)
golden: $(GOLD_BIN) bin/tandem
fuzz: $(FUZZ_BIN)

test: bin/tandem $(UNIT_BIN) $(GOLD_BIN) $(FUZZ_BIN)
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash tests/run.sh

bench: bin/tandem build/bench/engine_bench
	@bash bench/run.sh

demo: bin/tandem
	@bash scripts/demo.sh

deps:
	@bash scripts/install-deps.sh

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)

# Benchmark programs: engine_bench, matmul_bench, exit_bench, repack_ab.
build/bench/%: build/rel/bench/%.o $(REL_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# CUDA kernels, `make cuda`, `make test-gpu` and the host-harness tests.
include kernels/cuda/cuda.mk
