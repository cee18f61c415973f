/* A checkpoint folder's safetensors: model.safetensors, or the shards that
 * model.safetensors.index.json's weight_map names, opened together and
 * looked up by tensor name across files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json_file.h"
#include "safetensors.h"

#define INDEX_NAME "model.safetensors.index.json"
#define SINGLE_NAME "model.safetensors"
#define MAX_INDEX_BYTES (64u << 20)

struct st_set {
    struct st_file **files;
    int n_files;
    const struct st_tensor **tensors; /* every file's, by name */
    int64_t n_tensors;
};

static int compare_by_name(const void *a, const void *b)
{
    return strcmp((*(const struct st_tensor *const *)a)->name, (*(const struct st_tensor *const *)b)->name);
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", dir, name);
    return s;
}

static bool add_file(struct st_set *s, const char *dir, const char *name, char *err, size_t errlen)
{
    char *path = join(dir, name);
    struct st_file **files = realloc(s->files, ((size_t)s->n_files + 1) * sizeof *files);
    if (!path || !files) {
        free(path);
        snprintf(err, errlen, "%s: out of memory", dir);
        return false;
    }
    s->files = files;
    s->files[s->n_files] = st_open(path, err, errlen);
    free(path);
    if (!s->files[s->n_files])
        return false;
    s->n_files++;
    return true;
}

/* Every tensor of every file in one sorted table; a name in two shards is
 * an error (which one would the model use?). */
static bool index_tensors(struct st_set *s, const char *dir, char *err, size_t errlen)
{
    int64_t n = 0;
    for (int i = 0; i < s->n_files; i++)
        n += st_n_tensors(s->files[i]);
    s->tensors = malloc(((size_t)n + 1) * sizeof *s->tensors);
    if (!s->tensors) {
        snprintf(err, errlen, "%s: out of memory", dir);
        return false;
    }
    for (int i = 0; i < s->n_files; i++)
        for (int64_t j = 0; j < st_n_tensors(s->files[i]); j++)
            s->tensors[s->n_tensors++] = st_tensor_at(s->files[i], j);
    qsort(s->tensors, (size_t)n, sizeof *s->tensors, compare_by_name);
    for (int64_t i = 1; i < n; i++) {
        if (strcmp(s->tensors[i - 1]->name, s->tensors[i]->name) == 0) {
            snprintf(err, errlen, "%s: tensor '%.64s' is in both %s and %s", dir, s->tensors[i]->name,
                     st_path(s->tensors[i - 1]->file), st_path(s->tensors[i]->file));
            return false;
        }
    }
    return true;
}

/* A shard must be a file of dir itself: no paths, hidden or otherwise. */
static bool plain_file_name(const char *name)
{
    return name[0] != '\0' && name[0] != '.' && !strchr(name, '/');
}

static bool file_listed(const struct st_set *s, const char *dir, const char *name)
{
    size_t n = strlen(dir);
    for (int i = 0; i < s->n_files; i++) {
        const char *p = st_path(s->files[i]);
        if (strncmp(p, dir, n) == 0 && p[n] == '/' && strcmp(p + n + 1, name) == 0)
            return true;
    }
    return false;
}

/* Opens the shards in the order the weight_map first names them and checks
 * that it maps exactly the tensors they hold, each to its own file. */
static bool open_index(struct st_set *s, const char *dir, const char *index_path, char *err, size_t errlen)
{
    json_object *root = json_read_file(index_path, MAX_INDEX_BYTES, err, errlen);
    if (!root)
        return false;
    json_object *map = NULL;
    bool ok = true;
    if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "weight_map", &map) ||
        !json_object_is_type(map, json_type_object)) {
        snprintf(err, errlen, "%s: no 'weight_map' object", index_path);
        ok = false;
    }
    int64_t n_mapped = 0;
    if (ok) {
        json_object_object_foreach(map, name, file) {
            const char *fname = json_object_is_type(file, json_type_string) ? json_object_get_string(file) : NULL;
            if (!fname || !plain_file_name(fname)) {
                snprintf(err, errlen, "%s: tensor '%.64s' maps to %s, not a file name in the folder", index_path,
                         name, fname ? fname : "a non-string");
                ok = false;
                break;
            }
            if (!file_listed(s, dir, fname) && !add_file(s, dir, fname, err, errlen)) {
                ok = false;
                break;
            }
            n_mapped++;
        }
    }
    if (ok)
        ok = index_tensors(s, dir, err, errlen);
    if (ok) {
        json_object_object_foreach(map, name, file) {
            const struct st_tensor *t = st_set_find(s, name);
            const char *fname = json_object_get_string(file);
            if (!t || strcmp(strrchr(st_path(t->file), '/') + 1, fname) != 0) {
                snprintf(err, errlen, "%s: tensor '%.64s' is not in %s", index_path, name, fname);
                ok = false;
                break;
            }
        }
    }
    if (ok && n_mapped != s->n_tensors) {
        /* every mapped name was found, so some tensor is not mapped */
        snprintf(err, errlen, "%s: the shards hold %lld tensors but weight_map names %lld", index_path,
                 (long long)s->n_tensors, (long long)n_mapped);
        ok = false;
    }
    json_object_put(root);
    return ok;
}

struct st_set *st_set_open(const char *dir, char *err, size_t errlen)
{
    struct st_set *s = calloc(1, sizeof *s);
    char *index_path = join(dir, INDEX_NAME);
    if (!s || !index_path) {
        snprintf(err, errlen, "%s: out of memory", dir);
        free(s);
        free(index_path);
        return NULL;
    }
    char *single_path = join(dir, SINGLE_NAME);
    bool ok;
    if (access(index_path, F_OK) == 0) {
        ok = open_index(s, dir, index_path, err, errlen);
    } else if (single_path && access(single_path, F_OK) == 0) {
        ok = add_file(s, dir, SINGLE_NAME, err, errlen) && index_tensors(s, dir, err, errlen);
    } else {
        snprintf(err, errlen, "%s: neither %s nor %s found", dir, SINGLE_NAME, INDEX_NAME);
        ok = false;
    }
    free(index_path);
    free(single_path);
    if (!ok) {
        st_set_free(s);
        return NULL;
    }
    return s;
}

void st_set_free(struct st_set *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n_files; i++)
        st_close(s->files[i]);
    free(s->files);
    free(s->tensors);
    free(s);
}

int64_t st_set_n_tensors(const struct st_set *s) { return s->n_tensors; }

const struct st_tensor *st_set_tensor_at(const struct st_set *s, int64_t i)
{
    return i >= 0 && i < s->n_tensors ? s->tensors[i] : NULL;
}

const struct st_tensor *st_set_find(const struct st_set *s, const char *name)
{
    struct st_tensor key = {.name = name};
    const struct st_tensor *pkey = &key;
    const struct st_tensor **hit =
        bsearch(&pkey, s->tensors, (size_t)s->n_tensors, sizeof *s->tensors, compare_by_name);
    return hit ? *hit : NULL;
}
