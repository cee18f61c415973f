# ---- CUDA (included by the Makefile) ----------------------------------------
# `make cuda`      nvcc objects and build/cuda/libtandem_cuda.a for CUDA_ARCHS,
#                  warnings as errors, per-kernel resource report, bin/tandem-cuda.
# `make test-gpu`  the kernel comparisons and benchmarks on a real GPU (skips
#                  without one).
# `make test` builds the host-harness tests below (no nvcc involved): the same
# kernel sources compiled by the host C++ compiler, under ASan and TSan.

NVCC       ?= nvcc
CXX        ?= g++
CUDA_HOME  ?= $(patsubst %/bin/nvcc,%,$(shell command -v $(NVCC) 2>/dev/null))
CUDA_ARCHS ?= sm_75 sm_80 sm_86 sm_87 sm_90
# C++14: the draft path must also build with CUDA 10.2 (Jetson Nano).
# Per-thread default stream: stream 0 in every launch and copy is the calling
# thread's stream, which (unlike the legacy one) a CUDA graph can capture.
NVCC_FLAGS := -std=c++14 -O3 -lineinfo -I. -Werror all-warnings --default-stream per-thread \
              -Xcompiler -Wall,-Wextra,-Werror \
              $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a:sm_%=%),code=$(a))
# cuBLAS: the GEMM of passes above 16 rows (kernels/cuda/gemm.cu).
CUDA_LIBS  := -L$(CUDA_HOME)/lib64 -lcublas -lcudart -lstdc++

CUDA_SRC   := $(wildcard kernels/cuda/*.cu)
CUDA_OBJ   := $(CUDA_SRC:%.cu=build/cuda/%.o)
# The library with the real CUDA backend in place of the "built without" one.
CUDA_LIB   := $(filter-out build/rel/engine/backend_cuda.o,$(REL_LIB)) \
              build/cuda/engine/backend_cuda.o build/cuda/libtandem_cuda.a


.PHONY: cuda test-gpu

# ptxas -v goes to $@.log (the resource report); anything else nvcc says is shown.
build/cuda/%.o: %.cu $(wildcard kernels/cuda/*.cuh kernels/cuda/*.h)
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) -Xptxas -v -c -o $@ $< 2> $@.log; rc=$$?; \
	  grep -v -e '^ptxas info' -e 'bytes stack frame' $@.log >&2; exit $$rc

build/cuda/libtandem_cuda.a: $(CUDA_OBJ)
	rm -f $@
	ar rcs $@ $^

# Registers, stack, spills and shared memory of every kernel, per arch.
build/cuda/resources.txt: build/cuda/libtandem_cuda.a kernels/cuda/resources.sh
	{ echo "# ptxas -v of make cuda: CUDA_ARCHS=$(CUDA_ARCHS), $$($(NVCC) --version | tail -n 1)"; \
	  echo; bash kernels/cuda/resources.sh $(CUDA_OBJ:%=%.log); } > $@
	@awk -F'|' 'NR > 4 && $$6 !~ /^ *0\/0 *$$/ { print "spills:" $$0 }' $@

# The engine with the CUDA backend compiled in.
build/cuda/engine/backend_cuda.o: engine/backend_cuda.c | $(PROTO_GEN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DTANDEM_CUDA -c -o $@ $<

bin/tandem-cuda: $(REL_TOOL) $(CUDA_LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(CUDA_LIBS)

# The same test drivers as on the harness, natively, and the kernel table.
build/cuda/test_cuda_%: build/rel/tests/cuda/test_cuda_%.o $(CUDA_LIB)
	$(CC) $(CFLAGS) -o $@ $^ -lcmocka $(LDLIBS) $(CUDA_LIBS)

build/cuda/gpu_bench: build/rel/tests/cuda/gpu_bench.o $(CUDA_LIB)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS) $(CUDA_LIBS)

cuda: build/cuda/libtandem_cuda.a build/cuda/resources.txt bin/tandem-cuda \
      build/cuda/test_cuda_ops build/cuda/test_cuda_forward build/cuda/test_cuda_exits \
      build/cuda/test_cuda_cloud build/cuda/gpu_bench
	@mkdir -p bench/results/cuda
	cp build/cuda/resources.txt bench/results/cuda/resources.txt

test-gpu:
	@if ! nvidia-smi -L >/dev/null 2>&1; then \
	  echo "test-gpu: skipped: nvidia-smi finds no GPU on this machine"; \
	else $(MAKE) cuda bin/tandem && bash tests/cuda/gpu.sh; fi

# ---- host harness (tests only) ----
HARNESS_SRC := $(CUDA_SRC) kernels/cuda/host/harness.cpp kernels/cuda/host/cublas.cpp
HOST_CXXFLAGS := -std=c++17 -O1 -g -I. -Wall -Wextra -Werror -MMD -MP
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer
# The CPU kernels the comparisons use, built again for TSan.
TSAN_CPU_SRC := $(wildcard kernels/*.c kernels/cpu/*.c) engine/sample.c

build/cudahost-asan/%.o: %
	@mkdir -p $(@D)
	$(CXX) $(HOST_CXXFLAGS) $(SAN_FLAGS) -x c++ -c -o $@ $<
build/cudahost-tsan/%.o: %
	@mkdir -p $(@D)
	$(CXX) $(HOST_CXXFLAGS) $(TSAN_FLAGS) -x c++ -c -o $@ $<
build/tsan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(TSAN_FLAGS) -c -o $@ $<

HARNESS_ASAN := $(HARNESS_SRC:%=build/cudahost-asan/%.o)
HARNESS_TSAN := $(HARNESS_SRC:%=build/cudahost-tsan/%.o)

build/san/tests/test_cuda_ops: build/san/tests/cuda/test_cuda_ops.o $(HARNESS_ASAN) $(SAN_LIB)
	@mkdir -p $(@D)
	$(CXX) $(SAN_FLAGS) -o $@ $^ -lcmocka $(LDLIBS)

build/tsan/tests/test_cuda_ops: build/tsan/tests/cuda/test_cuda_ops.o $(HARNESS_TSAN) \
                                $(TSAN_CPU_SRC:%.c=build/tsan/%.o)
	@mkdir -p $(@D)
	$(CXX) $(TSAN_FLAGS) -o $@ $^ -lcmocka -lpthread -lm

# The whole forward pass of the CUDA backend on the harness, against the CPU
# backend (ASan; the library is not built for TSan).
build/san/engine/backend_cuda_on.o: engine/backend_cuda.c | $(PROTO_GEN)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -DTANDEM_CUDA -c -o $@ $<

# The whole pass (test_cuda_forward), exits in a pass (test_cuda_exits) and
# the cloud serving an edge from the device (test_cuda_cloud).
build/san/tests/test_cuda_%: build/san/tests/cuda/test_cuda_%.o $(HARNESS_ASAN) \
                             $(filter-out build/san/engine/backend_cuda.o,$(SAN_LIB)) \
                             build/san/engine/backend_cuda_on.o
	@mkdir -p $(@D)
	$(CXX) $(SAN_FLAGS) -o $@ $^ -lcmocka $(LDLIBS)

build/tsan/tests/harness_selftest: build/cudahost-tsan/kernels/cuda/host/selftest.cu.o \
                                  build/cudahost-tsan/kernels/cuda/host/harness.cpp.o \
                                  build/tsan/kernels/cpu/convert.o
	@mkdir -p $(@D)
	$(CXX) $(TSAN_FLAGS) -o $@ $^ -lpthread -lm

CUDA_HOST_TESTS := build/san/tests/test_cuda_ops build/tsan/tests/test_cuda_ops \
                   build/tsan/tests/harness_selftest build/san/tests/test_cuda_forward \
                   build/san/tests/test_cuda_exits build/san/tests/test_cuda_cloud
test: $(CUDA_HOST_TESTS)
cuda-host-tests: $(CUDA_HOST_TESTS)
.PHONY: cuda-host-tests
