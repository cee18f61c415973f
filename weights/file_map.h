/* A whole regular file mapped read-only, for the model-file readers (GGUF,
 * safetensors). The reader validates every byte it uses; this only maps. */
#ifndef TANDEM_WEIGHTS_FILE_MAP_H
#define TANDEM_WEIGHTS_FILE_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Maps path. On success *bytes is the mapping (NULL for an empty file) and
 * *size its length; `sequential` tells the kernel reads go mostly in file
 * order. false with the reason (no path prefix) in why otherwise. */
bool file_map(const char *path, bool sequential, const uint8_t **bytes, uint64_t *size,
              char *why, size_t whylen);
void file_unmap(const uint8_t *bytes, uint64_t size);

#endif
