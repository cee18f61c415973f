/* Strict json-c parsing of buffers and files, and typed getters. */
#include "json_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Deep enough for every file we read (tokenizer.json nests about 6 levels),
 * shallow enough that a hostile file cannot recurse far. */
#define MAX_DEPTH 32

json_object *json_parse_text(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
    if (len > INT32_MAX) { /* json-c takes an int length */
        snprintf(err, errlen, "%s: %zu bytes of JSON is too long", name, len);
        return NULL;
    }
    struct json_tokener *tok = json_tokener_new_ex(MAX_DEPTH);
    if (!tok) {
        snprintf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    /* strict: standard JSON only, nothing but whitespace after the value;
     * and strings that are UTF-8, as token texts and names must be */
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *v = json_tokener_parse_ex(tok, text, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    json_tokener_free(tok);
    if (!v && e == json_tokener_continue) {
        snprintf(err, errlen, "%s: JSON ends early (%zu bytes)", name, len);
        return NULL;
    }
    if (!v && e != json_tokener_success) {
        snprintf(err, errlen, "%s: bad JSON at byte %zu: %s", name, end, json_tokener_error_desc(e));
        return NULL;
    }
    /* "null" parses to NULL with success; callers want an object anyway */
    if (!v) {
        snprintf(err, errlen, "%s: JSON is null", name);
        return NULL;
    }
    return v;
}

json_object *json_read_file(const char *path, size_t max_bytes, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    bool ok = false;
    if (fstat(fileno(fp), &st) != 0)
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        snprintf(err, errlen, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size > max_bytes)
        snprintf(err, errlen, "%s: %lld bytes, more than the %zu a JSON file may have here", path,
                 (long long)st.st_size, max_bytes);
    else if (!(buf = malloc((size_t)st.st_size + 1)))
        snprintf(err, errlen, "%s: out of memory", path);
    else if ((len = fread(buf, 1, (size_t)st.st_size, fp)) != (size_t)st.st_size)
        snprintf(err, errlen, "%s: read error", path);
    else
        ok = true;
    fclose(fp);
    json_object *v = ok ? json_parse_text(path, buf, len, err, errlen) : NULL;
    free(buf);
    return v;
}

json_object *json_get(json_object *obj, const char *key)
{
    json_object *v = NULL;
    return obj && json_object_is_type(obj, json_type_object) && json_object_object_get_ex(obj, key, &v) ? v : NULL;
}

const char *json_get_str(json_object *obj, const char *key)
{
    json_object *v = json_get(obj, key);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

bool json_int(const json_object *v, int64_t *out)
{
    if (!json_object_is_type(v, json_type_int))
        return false;
    /* json-c keeps integers above INT64_MAX as uint64; get_int64 saturates */
    int64_t x = json_object_get_int64(v);
    if (x == INT64_MAX && json_object_get_uint64(v) != (uint64_t)INT64_MAX)
        return false;
    *out = x;
    return true;
}

bool json_number(const json_object *v, double *out)
{
    if (json_object_is_type(v, json_type_double)) {
        *out = json_object_get_double(v);
        return true;
    }
    int64_t i;
    if (!json_int(v, &i))
        return false;
    *out = (double)i;
    return true;
}
