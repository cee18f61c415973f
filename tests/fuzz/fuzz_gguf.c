/* libFuzzer target for the GGUF reader: every input is written to an
 * in-memory file and opened; whatever opens is walked through every accessor
 * and every tensor byte is read, so ASan sees any access the validation let
 * through. gguf_open takes a path, and /proc/self/fd/N of a memfd is one
 * without touching the disk. */
#define _GNU_SOURCE /* memfd_create */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "weights/gguf.h"

static int memfd = -1;
static char memfd_path[64];
static volatile uint64_t checksum; /* keeps the reads of the walk */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    memfd = memfd_create("fuzz_gguf", 0);
    if (memfd < 0) {
        perror("memfd_create");
        abort();
    }
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
    if (ftruncate(memfd, 0) != 0 || (size > 0 && pwrite(memfd, data, size, 0) != (ssize_t)size))
        abort();
}

static uint64_t walk_kv(const struct gguf_file *f, const char *key)
{
    uint32_t u;
    int64_t s;
    float x;
    bool b;
    enum gguf_value_type elem_type;
    uint64_t n, sum = (uint64_t)gguf_kv_type(f, key);
    sum += gguf_get_u32(f, key, &u) + gguf_get_i64(f, key, &s) + gguf_get_f32(f, key, &x) +
           gguf_get_bool(f, key, &b);
    const char *str = gguf_get_str(f, key);
    sum += str ? strlen(str) : 0;
    if (!gguf_get_arr(f, key, &elem_type, &n))
        return sum;
    for (uint64_t i = 0; i <= n; i++) { /* one past the end must be refused */
        const char *elem = gguf_arr_str(f, key, i);
        sum += (elem ? strlen(elem) : 0) + gguf_arr_i64(f, key, i, &s) + gguf_arr_f32(f, key, i, &x);
    }
    return sum;
}

static uint64_t walk_tensor(const struct gguf_file *f, const struct gguf_tensor *t)
{
    if (gguf_find_tensor(f, t->name) != t)
        abort();
    uint64_t sum = strlen(t->name);
    const uint8_t *bytes = t->data;
    for (uint64_t i = 0; i < t->nbytes; i++)
        sum += bytes[i];
    return sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    write_input(data, size);
    struct gguf_file *f = gguf_open(memfd_path, err, sizeof err);
    if (!f) {
        if (strncmp(err, memfd_path, strlen(memfd_path)) != 0) /* errors name the file */
            abort();
        return 0;
    }
    uint64_t sum = 0;
    for (int64_t i = 0; i < gguf_n_kv(f); i++) {
        const char *key = gguf_key(f, i);
        if (gguf_find_key(f, key) != i)
            abort();
        sum += walk_kv(f, key);
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++)
        sum += walk_tensor(f, gguf_tensor_at(f, i));
    checksum = sum;
    gguf_close(f);
    return 0;
}
