/* Read-only file mappings (see file_map.h). */
#include "file_map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

bool file_map(const char *path, bool sequential, const uint8_t **bytes, uint64_t *size,
              char *why, size_t whylen)
{
    *bytes = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return false;
    }
    struct stat st;
    bool ok = true;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        ok = false;
    } else if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        ok = false;
    } else {
        *size = (uint64_t)st.st_size;
    }
    if (ok && *size > 0) {
        void *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            snprintf(why, whylen, "mmap: %s", strerror(errno));
            ok = false;
        } else {
            *bytes = map;
            if (sequential)
                madvise(map, *size, MADV_SEQUENTIAL);
        }
    }
    close(fd);
    return ok;
}

void file_unmap(const uint8_t *bytes, uint64_t size)
{
    if (bytes)
        munmap((void *)bytes, size);
}
